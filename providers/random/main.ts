import { serve } from "../common/serve";
import { randomPassword } from "./password";

// The @pulumi/random SDK this plugin stands in for.
const VERSION = "4.21.2";

serve(VERSION, { "random:index/randomPassword:RandomPassword": randomPassword });
