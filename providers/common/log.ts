import * as grpc from "@grpc/grpc-js";
import { EngineClient } from "@pulumi/pulumi/proto/engine_grpc_pb";
import { LogRequest, LogSeverity } from "@pulumi/pulumi/proto/engine_pb";

/** Messages shown by the Pulumi CLI under one resource. */
export interface Logger {
    info(message: string): void;
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
    return {
        info(message) {
            const client = engine;
            if (!client) {
                // Without an engine stderr is the only channel; it never feeds outputs.
                process.stderr.write(`${message}\n`);
                return;
            }
            const req = new LogRequest().setSeverity(LogSeverity.INFO).setMessage(message).setUrn(urn);
            // Sequential sends keep the CLI output in the order the lines were produced.
            chain = chain.then(() => new Promise<void>((resolve) => client.log(req, () => resolve())));
        },
        flush: () => chain,
    };
}
