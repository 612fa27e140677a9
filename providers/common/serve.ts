import * as grpc from "@grpc/grpc-js";
import * as provider from "@pulumi/pulumi/provider";
import { connectEngineLog, Logger, resourceLogger } from "./log";
import { WireMap } from "./values";

/** What a resource operation may use besides its properties. */
export interface OpContext {
    urn: string;
    /** The resource's name, the last URN segment. */
    name: string;
    log: Logger;
}

/** One resource type. Olds are always the previous *outputs*: that is what the Node provider server hands over. */
export interface ResourceType {
    check(olds: WireMap, news: WireMap): Promise<provider.CheckResult>;
    diff(olds: WireMap, news: WireMap): Promise<provider.DiffResult>;
    create(ctx: OpContext, inputs: WireMap): Promise<provider.CreateResult>;
    update?(ctx: OpContext, id: string, olds: WireMap, news: WireMap): Promise<provider.UpdateResult>;
    delete?(ctx: OpContext, id: string, props: WireMap): Promise<void>;
    /** Refresh: the resource's current state, or undefined when it no longer exists. */
    read?(ctx: OpContext, id: string, props: WireMap): Promise<provider.ReadResult | undefined>;
}

/** Receives the provider configuration (`<pkg>:<key>` values) the engine sends with Configure. */
export type ConfigureHook = (config: WireMap) => void;

/** "urn:pulumi:stack::project::parent$type::name" -> "type" */
export function typeOf(urn: string): string {
    return urn.split("::")[2]?.split("$").pop() ?? "";
}

function context(urn: string): OpContext {
    return { urn, name: urn.split("::").slice(3).join("::"), log: resourceLogger(urn) };
}

/** Runs an operation and waits until its log lines reached the engine, success or not. */
async function logged<T>(urn: string, op: (ctx: OpContext) => Promise<T>): Promise<T> {
    const ctx = context(urn);
    try {
        return await op(ctx);
    } finally {
        await ctx.log.flush();
    }
}

/** A Provider for the SDK's gRPC server that routes each call by the resource type in its URN. */
export function dispatch(version: string, types: Record<string, ResourceType>): provider.Provider {
    const typeFor = (urn: string): ResourceType => {
        const t = types[typeOf(urn)];
        if (!t) throw new Error(`unknown resource type ${typeOf(urn)}`);
        return t;
    };
    return {
        version,
        check: async (urn, olds, news) => typeFor(urn).check(olds, news),
        diff: async (_id, urn, olds, news) => typeFor(urn).diff(olds, news),
        create: async (urn, inputs) => logged(urn, (ctx) => typeFor(urn).create(ctx, inputs)),
        update: async (id, urn, olds, news) => {
            const t = typeFor(urn);
            if (!t.update) throw new Error(`${typeOf(urn)} is only ever replaced, never updated in place`);
            return logged(urn, (ctx) => t.update!(ctx, id, olds, news));
        },
        delete: async (id, urn, props) => {
            const t = typeFor(urn);
            if (t.delete) await logged(urn, (ctx) => t.delete!(ctx, id, props));
        },
        read: async (id, urn, props) => {
            const t = typeFor(urn);
            if (!t.read) return { id, props };
            // An empty ID tells the engine the resource is gone.
            return (await logged(urn, (ctx) => t.read!(ctx, id, props ?? {}))) ?? { id: "", props: {} };
        },
    };
}

/** Entry point of a plugin process: `main.ts` of each provider calls this. */
/**
 * The SDK's provider server acknowledges Configure without handing the values on, so the
 * hook sees the request first: the typed `args` when the engine sends them, else the legacy
 * `pkg:config:key` variables (keys are returned without any prefix).
 */
export function configureRequestValues(req: { getArgs(): { toJavaScript(): unknown } | undefined; getVariablesMap(): { toObject(): [string, string][] } }): WireMap {
    const args = req.getArgs()?.toJavaScript() as WireMap | undefined;
    if (args && Object.keys(args).length > 0) return args;
    const out: WireMap = {};
    for (const [k, v] of req.getVariablesMap().toObject()) out[k.split(":").pop()!] = v;
    return out;
}

function interceptConfigure(hook: ConfigureHook): void {
    const proto = grpc.Server.prototype as unknown as { addService(service: object, impl: Record<string, unknown>): void };
    const addService = proto.addService;
    proto.addService = function (service, impl) {
        if (!("configure" in service) || typeof impl.configure !== "function") return addService.call(this, service, impl);
        const original = impl.configure as (call: { request: never }, cb: (err: unknown, resp?: unknown) => void) => void;
        const wrapped = Object.create(impl) as Record<string, unknown>;
        wrapped.configure = (call: { request: never }, cb: (err: unknown, resp?: unknown) => void) => {
            try {
                hook(configureRequestValues(call.request));
            } catch (e) {
                return cb(e);
            }
            original.call(impl, call, cb);
        };
        return addService.call(this, service, wrapped);
    };
}

export function serve(version: string, types: Record<string, ResourceType>, configure?: ConfigureHook): void {
    if (configure) interceptConfigure(configure);
    const args = process.argv.slice(2);
    // Same argument rules as the SDK's parseArgs: the first bare argument is the engine address.
    const flagsWithValue = new Set(["--tracing"]);
    const bare = args.filter((a, i) => !a.startsWith("-") && !flagsWithValue.has(args[i - 1] ?? ""));
    connectEngineLog(bare[0]);
    provider.main(dispatch(version, types), args).catch((err: unknown) => {
        console.error(err);
        process.exit(1);
    });
}
