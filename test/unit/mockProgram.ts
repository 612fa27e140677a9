/**
 * Runs index.ts under Pulumi mocks and records every RegisterResource request the engine
 * would get: inputs (with secret wrappers), dependencies, parent, protect. Tests assert on
 * what the program sends, not on the mock's echo.
 */
import * as pulumi from "@pulumi/pulumi";

// Compiling and running index.ts takes seconds on a busy machine: more than jest's 5 s default.
jest.setTimeout(60_000);

const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const SECRET_VALUE = "1b47061264138c4ac30d75fd1eb44270";

export interface Registration {
    type: string;
    name: string;
    parent: string;
    object: Record<string, any>;
    dependencies: string[];
    protect: boolean;
    deleteBeforeReplace: boolean;
    urn?: string;
}

export interface MockProgramOptions {
    stack: string;
    /** onevm config, key -> raw value (objects as JSON). */
    config: Record<string, string>;
    secretKeys: string[];
    /** Provider-computed outputs per resource type (merged into the echoed inputs). */
    computed?: (args: pulumi.runtime.MockResourceArgs) => Record<string, object>;
    id?: (args: pulumi.runtime.MockResourceArgs) => string;
    /** The stack's outputs of its previous `up` (read through StackReference self). */
    previousOutputs?: Record<string, unknown>;
    /** Working directory of the program (default: the repository root). */
    cwd?: string;
}

export type ProgramOutputs = Record<string, any>;

export interface MockProgramResult {
    registrations: Registration[];
    /** The stack outputs the program returned. */
    outputs: ProgramOutputs;
    /** Messages the program logged (pulumi.log), by severity. */
    logs: Array<{ severity: string; message: string }>;
    /** The program's refusal (pulumi.RunError), if it stopped. */
    error?: Error;
    /** The host key checks the program asked for (recorded instead of connecting). */
    preflights: object[];
    /** The registry gates the program asked for (recorded instead of connecting): lookups, whether it is needed, the registry (password included). */
    registryGates: Array<{ registry?: Record<string, string>; lookups: string[]; needed: boolean }>;
}

/** The digest the mocked registry serves for a reference: sha256 of the reference itself. */
export function mockDigest(ref: string): string {
    return `sha256:${require("crypto").createHash("sha256").update(ref).digest("hex")}`;
}

export async function runProgramUnderMocks(o: MockProgramOptions): Promise<MockProgramResult> {
    const registrations: Registration[] = [];
    // The host key pre-flight connects to the VM during `up` (mocks run as an update):
    // recorded here instead, with the values it would check.
    const preflights: object[] = [];
    // The registry gate asks a registry during `up`: recorded here, each tag "served" at mockDigest(ref).
    const registryGates: MockProgramResult["registryGates"] = [];
    jest.doMock("../../program/registry", () => ({
        registryGate: (g: { registry?: Record<string, string>; lookups: string[]; needed: boolean }) => {
            registryGates.push(g);
            const { pinnedRef } = jest.requireActual("../../lib/imageRef");
            return {
                ready: pulumi.output(undefined),
                digests: pulumi.output(Object.fromEntries(g.lookups.map((ref: string) => [ref, pinnedRef(ref, mockDigest(ref))]))),
            };
        },
    }));
    jest.doMock("../../program/hostKeyCheck", () => ({
        verifiedHostKey: (t: Record<string, pulumi.Input<unknown>>, text: { pinnedBy: string }) =>
            pulumi.all([t.host, t.port, t.user, t.hostKey]).apply(([host, port, user, hostKey]) => {
                preflights.push({ host, port, user, hostKey, pinnedBy: text.pinnedBy });
            }),
    }));
    await pulumi.runtime.setMocks(
        {
            newResource: (args) => {
                const computed: Record<string, object> = {
                    "random:index/randomPassword:RandomPassword": { result: "generated-db-pw" },
                    // The stack's own previous outputs: a first deploy has none.
                    "pulumi:pulumi:StackReference": { outputs: o.previousOutputs ?? {}, secretOutputNames: [] },
                    // What a push reports: the pushed name at a digest of it.
                    "docker:index/image:Image": { repoDigest: `${String(args.inputs.imageName).replace(/:[^:/]*$/, "")}@${mockDigest(String(args.inputs.imageName))}` },
                    ...o.computed?.(args),
                };
                return { id: o.id?.(args) ?? `${args.name}-id`, state: { ...args.inputs, ...computed[args.type] } };
            },
            call: () => ({}),
        },
        "onevm",
        o.stack,
        false,
        "organization",
    );
    const monitor = pulumi.runtime.getMonitor() as any;
    const register = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req: any, cb: any) => {
        const entry: Registration = {
            type: req.getType(),
            name: req.getName(),
            parent: req.getParent(),
            object: req.getObject()?.toJavaScript() ?? {},
            dependencies: req.getDependenciesList(),
            protect: req.getProtect(),
            deleteBeforeReplace: req.getDeletebeforereplace(),
        };
        registrations.push(entry);
        return register(req, (err: any, resp: any) => {
            entry.urn = resp?.getUrn();
            cb(err, resp);
        });
    };
    // Without an engine, pulumi.log writes "<severity>: [runtime] <message>" to the console.
    const logs: MockProgramResult["logs"] = [];
    const spies = (["log", "warn", "error"] as const).map((method) =>
        jest.spyOn(console, method).mockImplementation((...args: unknown[]) => {
            const line = args[0];
            const m = /^(\w+): \[runtime\] ([\s\S]*)$/.exec(String(line));
            logs.push(m ? { severity: m[1], message: m[2] } : { severity: method, message: String(line) });
        }),
    );
    pulumi.runtime.setAllConfig(o.config, o.secretKeys);
    // The program's working directory is the project root, as under the real engine.
    const cwd = process.cwd();
    process.chdir(o.cwd ?? ROOT);
    let outputs: ProgramOutputs = {};
    let error: Error | undefined;
    try {
        const main = (await import("../../index")).default as unknown as () => Promise<ProgramOutputs>;
        outputs = await main();
    } catch (e) {
        error = e as Error;
    } finally {
        process.chdir(cwd);
    }
    // Registrations made inside applies arrive later: wait until none has arrived for a
    // while (the mock monitor is in-process, so a quiet second means the program is done).
    await untilQuiet(() => registrations.length);
    spies.forEach((spy) => spy.mockRestore());
    return { registrations, outputs, logs, error, preflights, registryGates };
}

/** Resolves an output of the program (under mocks every value is known). */
export function value<T>(output: pulumi.Input<T> | undefined): Promise<T | undefined> {
    return new Promise((resolve) => pulumi.output(output).apply((v) => resolve(v as T)));
}

export const ROOT = require("path").resolve(__dirname, "..", "..");

async function untilQuiet(count: () => number, quietMs = 1000, maxMs = 30_000): Promise<void> {
    const start = Date.now();
    let last = -1;
    let since = Date.now();
    while (Date.now() - start < maxMs) {
        if (count() !== last) {
            last = count();
            since = Date.now();
        } else if (Date.now() - since >= quietMs) {
            return;
        }
        await new Promise((r) => setTimeout(r, 50));
    }
}

export const isSecret = (v: any): boolean => !!v && typeof v === "object" && v[SECRET_SIG] === SECRET_VALUE;
export const reveal = (v: any): any => (isSecret(v) ? v.value : v);
