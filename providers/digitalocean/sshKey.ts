/** digitalocean:index/sshKey:SshKey. A new public key replaces; a new name renames. */
import { ResourceType } from "../common/serve";
import { api } from "./client";
import { autoName, changed, Plain, plain, required } from "./props";

const outputs = (k: Plain) => ({ name: k.name, publicKey: k.public_key, fingerprint: k.fingerprint });

export const sshKey: ResourceType = {
    async check(olds, news) {
        return { inputs: { ...news, name: autoName(olds, news, "key") }, failures: required(news, ["publicKey"]) };
    },
    async diff(olds, news) {
        const replaces = changed(olds, { ...news, publicKey: trimKey(news.publicKey) }, ["publicKey"]);
        const updates = changed(olds, news, ["name"]);
        return replaces.length + updates.length === 0 ? { changes: false } : { changes: true, replaces };
    },
    async create(_ctx, inputs) {
        const p = plain(inputs);
        const r = await api<{ ssh_key: Plain }>("POST", "/account/keys", { name: p.name, public_key: String(p.publicKey).trim() });
        return { id: String(r!.ssh_key.id), outs: outputs(r!.ssh_key) };
    },
    async update(_ctx, id, _olds, news) {
        const r = await api<{ ssh_key: Plain }>("PUT", `/account/keys/${id}`, { name: plain(news).name });
        return { outs: outputs(r!.ssh_key) };
    },
    async delete(_ctx, id) {
        await api("DELETE", `/account/keys/${id}`, undefined, { allow404: true });
    },
    async read(_ctx, id) {
        const r = await api<{ ssh_key: Plain }>("GET", `/account/keys/${id}`, undefined, { allow404: true });
        return r && { id, props: outputs(r.ssh_key) };
    },
};

/** The API stores keys without a trailing newline (tls's publicKeyOpenssh has one). */
const trimKey = (k: unknown) => (typeof k === "string" ? k.trim() : (k as never));
