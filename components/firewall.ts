import * as pulumi from "@pulumi/pulumi";
import * as digitalocean from "@pulumi/digitalocean";
import { InboundRule, OutboundRule } from "../lib/render/firewall";

export interface CloudFirewallArgs {
    readonly app: string;
    /** The droplet the firewall applies to. */
    readonly dropletId: pulumi.Input<number>;
    /** From lib/render/firewall.ts, already checked by lib/policy.ts. */
    readonly inbound: InboundRule[];
    readonly outbound: OutboundRule[];
}

/** The DigitalOcean cloud firewall in front of the droplet. */
export class CloudFirewall extends pulumi.ComponentResource {
    public readonly firewall: digitalocean.Firewall;

    constructor(name: string, args: CloudFirewallArgs, opts?: pulumi.ComponentResourceOptions) {
        super("onevm:index:CloudFirewall", name, {}, opts);
        this.firewall = new digitalocean.Firewall(
            `${name}-rules`,
            {
                name: `${args.app}-firewall`,
                dropletIds: [args.dropletId],
                inboundRules: args.inbound,
                outboundRules: args.outbound,
            },
            { parent: this },
        );
        this.registerOutputs({ firewallId: this.firewall.id });
    }
}
