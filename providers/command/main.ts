import { serve } from "../common/serve";
import { localCommand } from "./local/command";
import { remoteCommand } from "./remote/command";
import { copyToRemote } from "./remote/copyToRemote";

// The @pulumi/command SDK this plugin stands in for.
const VERSION = "1.2.1";

serve(VERSION, {
    "command:remote:Command": remoteCommand,
    "command:remote:CopyToRemote": copyToRemote,
    "command:local:Command": localCommand,
});
