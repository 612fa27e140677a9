import { serve } from "../common/serve";
import { privateKey } from "./privateKey";

// The @pulumi/tls SDK this plugin stands in for.
const VERSION = "5.6.1";

serve(VERSION, { "tls:index/privateKey:PrivateKey": privateKey });
