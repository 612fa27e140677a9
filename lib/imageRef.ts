/**
 * Docker image references as the Docker CLI reads them, and the digest-pinned form a
 * release runs. Pure.
 */

/** A reference split as Docker normalises it (`postgres:17` is docker.io/library/postgres:17). */
export interface ImageRef {
    /** The registry host[:port] ("docker.io" for Docker Hub). */
    domain: string;
    /** The repository path on that registry ("library/postgres"). */
    path: string;
    tag?: string;
    /** "sha256:<64 hex>" when the reference pins one. */
    digest?: string;
    /** The reference without tag and digest, spelled as given ("postgres", "reg:5000/team/api"). */
    repository: string;
}

export const DOCKER_HUB = "docker.io";

/** The host the registry API of a domain answers on (Docker Hub's differs from its name). */
export function apiHost(domain: string): string {
    return domain === DOCKER_HUB || domain === "index.docker.io" ? "registry-1.docker.io" : domain;
}

/**
 * Splits a reference (already checked by validate.imageRef). The first path component is
 * a registry when it holds a '.' or ':' or is `localhost`, as in Docker's reference package.
 */
export function parseImageRef(ref: string): ImageRef {
    let rest = ref;
    let digest: string | undefined;
    const at = rest.indexOf("@");
    if (at >= 0) {
        digest = rest.slice(at + 1);
        rest = rest.slice(0, at);
    }
    let tag: string | undefined;
    const colon = rest.lastIndexOf(":");
    if (colon > rest.lastIndexOf("/")) {
        tag = rest.slice(colon + 1);
        rest = rest.slice(0, colon);
    }
    const repository = rest;
    const slash = rest.indexOf("/");
    const first = slash < 0 ? "" : rest.slice(0, slash);
    let domain = DOCKER_HUB;
    let path = rest;
    if (slash >= 0 && (first.includes(".") || first.includes(":") || first === "localhost")) {
        domain = first;
        path = rest.slice(slash + 1);
    }
    if (domain === DOCKER_HUB && !path.includes("/")) {
        path = `library/${path}`;
    }
    return { domain, path, tag, digest, repository };
}

/** `repository@digest`: what a release runs of `ref`, whatever its tag points to later. */
export function pinnedRef(ref: string, digest: string): string {
    return `${parseImageRef(ref).repository}@${digest}`;
}

/** A pinned reference as the VM's images.lock takes it: repository@sha256:<64 hex>. */
export const PINNED_REF = /^[a-z0-9][a-z0-9._:/-]*@sha256:[a-f0-9]{64}$/;

/** The tag onevm pushes a built image under: <server>/<namespace>/<name>:<releaseId>. */
export function builtImageRef(server: string, namespace: string, name: string, releaseId: string): string {
    return `${server}/${namespace}/${name.toLowerCase()}:${releaseId}`;
}
