import * as net from "net";
import { Logger } from "../common/log";
import { OpContext } from "../common/serve";
import { makeSecret, Wire } from "../common/values";

export interface CapturingLogger extends Logger {
    lines: string[];
}

export function capturingLogger(): CapturingLogger {
    const lines: string[] = [];
    return { lines, info: (m) => lines.push(m), flush: async () => undefined };
}

export function opContext(type: string, name = "test"): OpContext & { log: CapturingLogger } {
    return { urn: `urn:pulumi:dev::onevm::${type}::${name}`, name, log: capturingLogger() };
}

export const secret = (v: Wire): Wire => makeSecret(v);

/** A port nothing listens on (yet). */
export async function freePort(): Promise<number> {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as net.AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    return port;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
