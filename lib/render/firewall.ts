/** The cloud firewall's rules, in the shape of @pulumi/digitalocean's Firewall inputs. Pure. */

export interface InboundRule {
    protocol: "tcp" | "udp" | "icmp";
    portRange?: string;
    sourceAddresses: string[];
}

export interface OutboundRule {
    protocol: "tcp" | "udp" | "icmp";
    portRange?: string;
    destinationAddresses: string[];
}

export const ANYWHERE = ["0.0.0.0/0", "::/0"];

/** Inbound: SSH from the configured CIDRs only; 80/443 only with TLS ingress. Outbound: open. */
export function firewallRules(o: { sshAllowedCidrs: string[]; tlsIngress: boolean }): { inbound: InboundRule[]; outbound: OutboundRule[] } {
    const inbound: InboundRule[] = [{ protocol: "tcp", portRange: "22", sourceAddresses: [...o.sshAllowedCidrs] }];
    if (o.tlsIngress) {
        inbound.push({ protocol: "tcp", portRange: "80", sourceAddresses: ANYWHERE }, { protocol: "tcp", portRange: "443", sourceAddresses: ANYWHERE });
    }
    const outbound: OutboundRule[] = [
        { protocol: "tcp", portRange: "all", destinationAddresses: ANYWHERE },
        { protocol: "udp", portRange: "all", destinationAddresses: ANYWHERE },
        { protocol: "icmp", destinationAddresses: ANYWHERE },
    ];
    return { inbound, outbound };
}
