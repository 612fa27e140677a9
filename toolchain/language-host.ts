/**
 * A Node.js language host for the Pulumi CLI.
 *
 * The official `pulumi-language-nodejs` is a Go module with no version tags, which the
 * Go module proxy reachable here refuses to serve. The engine only needs the
 * LanguageRuntime gRPC service, and the program itself is run by the SDK's own
 * `@pulumi/pulumi/cmd/run` entry point, so this host does what the official one does:
 * print its port, then on `Run` spawn `node <sdk>/cmd/run <flags> <program>` with the
 * stack config in the environment and report the outcome.
 */
import * as grpc from "@grpc/grpc-js";
import { spawn } from "child_process";
import * as langproto from "@pulumi/pulumi/proto/language_pb";
import * as langrpc from "@pulumi/pulumi/proto/language_grpc_pb";
import * as plugproto from "@pulumi/pulumi/proto/plugin_pb";
import { version as sdkVersion } from "@pulumi/pulumi/version";

/** Exit code of `cmd/run` after it has already reported the program's error to the engine. */
const EXIT_AFTER_REPORTED_ERROR = 32;

type Unary<Req, Res> = (call: grpc.ServerUnaryCall<Req, Res>, cb: grpc.sendUnaryData<Res>) => void;

/** The `cmd/run` flags for one RunRequest, in the order the official host passes them. */
export function runArguments(req: langproto.RunRequest, engineAddress: string, runScript: string): string[] {
    const args = [runScript];
    const flag = (name: string, value: string | number | undefined) => {
        if (value !== undefined && value !== "") {
            args.push(`--${name}`, String(value));
        }
    };
    flag("monitor", req.getMonitorAddress());
    flag("engine", engineAddress);
    flag("organization", req.getOrganization());
    flag("project", req.getProject());
    flag("stack", req.getStack());
    flag("pwd", req.getPwd());
    flag("root-directory", req.getInfo()?.getRootDirectory());
    if (req.getDryrun()) {
        args.push("--dry-run");
    }
    flag("parallel", req.getParallel());
    args.push(req.getProgram() || ".");
    args.push(...req.getArgsList());
    return args;
}

/** The environment the SDK's runner reads its configuration from. */
export function runEnvironment(req: langproto.RunRequest, base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
    const config: Record<string, string> = {};
    req.getConfigMap().forEach((value, key) => {
        config[key] = value;
    });
    const options = req.getInfo()?.getOptions()?.toJavaScript() ?? {};
    const env: NodeJS.ProcessEnv = {
        ...base,
        PULUMI_CONFIG: JSON.stringify(config),
        PULUMI_CONFIG_SECRET_KEYS: JSON.stringify(req.getConfigsecretkeysList()),
        PULUMI_NODEJS_TYPESCRIPT: options["typescript"] === false ? "false" : "true",
    };
    if (typeof options["tsconfig"] === "string") {
        env.PULUMI_NODEJS_TSCONFIG_PATH = options["tsconfig"];
    }
    return env;
}

function programDirectory(req: langproto.RunRequest): string {
    return req.getInfo()?.getProgramDirectory() || req.getPwd() || process.cwd();
}

export class LanguageHost {
    constructor(private readonly engineAddress: string) {}

    run: Unary<langproto.RunRequest, langproto.RunResponse> = (call, callback) => {
        const req = call.request;
        const resp = new langproto.RunResponse();
        let runScript: string;
        try {
            runScript = require.resolve("@pulumi/pulumi/cmd/run", { paths: [programDirectory(req)] });
        } catch {
            resp.setError("The Pulumi SDK is not installed in the program's directory: run `npm install`.");
            callback(null, resp);
            return;
        }
        const child = spawn(process.execPath, runArguments(req, this.engineAddress, runScript), {
            cwd: req.getPwd() || programDirectory(req),
            env: runEnvironment(req, process.env),
            stdio: ["ignore", "inherit", "inherit"],
        });
        child.on("error", (err) => {
            resp.setError(`Could not start the program runner: ${err.message}`);
            callback(null, resp);
        });
        child.on("exit", (code, signal) => {
            if (code === EXIT_AFTER_REPORTED_ERROR) {
                resp.setBail(true);
            } else if (signal) {
                resp.setError(`Program was killed by ${signal}`);
            } else if (code !== 0) {
                resp.setError(`Program exited with non-zero exit code: ${code}`);
            }
            callback(null, resp);
        });
    };

    handshake: Unary<langproto.LanguageHandshakeRequest, langproto.LanguageHandshakeResponse> = (_call, callback) =>
        callback(null, new langproto.LanguageHandshakeResponse());

    // Plugins are installed by scripts/setup.sh from source, so the host never asks the CLI
    // to download any; providers are loaded on demand as the program registers resources.
    getRequiredPlugins: Unary<langproto.GetRequiredPluginsRequest, langproto.GetRequiredPluginsResponse> = (
        _call,
        callback,
    ) => callback(null, new langproto.GetRequiredPluginsResponse());

    getRequiredPackages: Unary<langproto.GetRequiredPackagesRequest, langproto.GetRequiredPackagesResponse> = (
        _call,
        callback,
    ) => callback(null, new langproto.GetRequiredPackagesResponse());

    getPluginInfo: Unary<unknown, plugproto.PluginInfo> = (_call, callback) => {
        const info = new plugproto.PluginInfo();
        info.setVersion(sdkVersion);
        callback(null, info);
    };

    getProgramDependencies: Unary<
        langproto.GetProgramDependenciesRequest,
        langproto.GetProgramDependenciesResponse
    > = (_call, callback) => callback(null, new langproto.GetProgramDependenciesResponse());

    about: Unary<langproto.AboutRequest, langproto.AboutResponse> = (_call, callback) => {
        const about = new langproto.AboutResponse();
        about.setExecutable(process.execPath);
        about.setVersion(process.version);
        callback(null, about);
    };

    runtimeOptionsPrompts: Unary<
        langproto.RuntimeOptionsRequest,
        langproto.RuntimeOptionsResponse
    > = (_call, callback) => callback(null, new langproto.RuntimeOptionsResponse());

    // Dependencies are installed by `npm ci` in scripts/setup.sh; nothing to stream.
    installDependencies = (call: grpc.ServerWritableStream<unknown, unknown>) => call.end();
}

/** Serves the host on a free loopback port and prints the port, as the engine expects. */
export async function serve(engineAddress: string): Promise<grpc.Server> {
    const server = new grpc.Server({ "grpc.max_receive_message_length": 400 * 1024 * 1024 });
    server.addService(
        langrpc.LanguageRuntimeService,
        new LanguageHost(engineAddress) as unknown as grpc.UntypedServiceImplementation,
    );
    const port = await new Promise<number>((resolve, reject) =>
        server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
            err ? reject(err) : resolve(p),
        ),
    );
    process.stdout.write(`${port}\n`);
    return server;
}

if (require.main === module) {
    // argv: [flags...] <engine address>; the engine address is the last non-flag argument.
    const positional = process.argv.slice(2).filter((a) => !a.startsWith("-"));
    serve(positional[positional.length - 1] ?? "").catch((err) => {
        process.stderr.write(`pulumi-language-nodejs: ${err instanceof Error ? err.message : err}\n`);
        process.exit(1);
    });
}

