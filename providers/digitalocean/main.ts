import { serve } from "../common/serve";
import { configure } from "./client";
import { droplet } from "./droplet";
import { firewall } from "./firewall";
import { reservedIp, reservedIpAssignment } from "./reservedIp";
import { sshKey } from "./sshKey";
import { volume, volumeAttachment } from "./volume";

// The @pulumi/digitalocean SDK this plugin stands in for.
const VERSION = "4.80.1";

serve(
    VERSION,
    {
        "digitalocean:index/droplet:Droplet": droplet,
        "digitalocean:index/sshKey:SshKey": sshKey,
        "digitalocean:index/firewall:Firewall": firewall,
        "digitalocean:index/volume:Volume": volume,
        "digitalocean:index/volumeAttachment:VolumeAttachment": volumeAttachment,
        "digitalocean:index/reservedIp:ReservedIp": reservedIp,
        "digitalocean:index/reservedIpAssignment:ReservedIpAssignment": reservedIpAssignment,
    },
    (config) => configure(config),
);
