import * as grpc from "@grpc/grpc-js";
import { EngineClient } from "@pulumi/pulumi/proto/engine_grpc_pb";
import { LogRequest, LogSeverity } from "@pulumi/pulumi/proto/engine_pb";

/** Messages shown by the Pulumi CLI under one resource. */
export interface Logger {
    info(message: string): void;
    warn(message: string): void;
    /** Resolves once every message logged so far has reached the engine. */
    flush(): Promise<void>;
}

let engine: EngineClient | undefined;

/** Called once with the engine address the CLI passed on the plugin's command line. */
export function connectEngineLog(address: string | undefined): void {
    if (address) engine = new EngineClient(address, grpc.credentials.createInsecure());
}

export function resourceLogger(urn: string): Logger {
    let chain = Promise.resolve();
    const send = (severity: LogSeverity, message: string) => {
        const client = engine;
        if (!client) {
            // No engine (unit tests): stderr is the only channel, and it never feeds outputs.
            process.stderr.write(`${message}\n`);
            return;
        }
        const req = new LogRequest().setSeverity(severity).setMessage(message).setUrn(urn);
        // Sequential sends keep the CLI output in the order the lines were produced.
        chain = chain.then(() => new Promise<void>((resolve) => client.log(req, () => resolve())));
    };
    return {
        info: (m) => send(LogSeverity.INFO, m),
        warn: (m) => send(LogSeverity.WARNING, m),
        flush: () => chain,
    };
}
