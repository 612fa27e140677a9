import { serve } from "../common/serve";
import { certRequest } from "./certRequest";
import { locallySignedCert } from "./locallySignedCert";
import { privateKey } from "./privateKey";
import { selfSignedCert } from "./selfSignedCert";

// The @pulumi/tls SDK this plugin stands in for.
const VERSION = "5.6.1";

serve(VERSION, {
    "tls:index/privateKey:PrivateKey": privateKey,
    "tls:index/selfSignedCert:SelfSignedCert": selfSignedCert,
    "tls:index/certRequest:CertRequest": certRequest,
    "tls:index/locallySignedCert:LocallySignedCert": locallySignedCert,
});
