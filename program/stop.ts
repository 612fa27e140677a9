import * as pulumi from "@pulumi/pulumi";

/** The SDK's exit code for "exited after logging a user-actionable message" (cmd/run). */
const EXIT_AFTER_REPORTED_ERROR = 32;

/**
 * Reports a refusal found inside an apply and ends the program; the language host then
 * fails the preview or update with that one message. Rejecting the Output instead fails
 * every resource depending on it, each time with the error wrapped in another "error
 * serializing property" prefix, and the SDK's formatting of those errors took a minute of
 * CPU before the update ended.
 */
export async function stopWithError(message: string): Promise<never> {
    await pulumi.log.error(message);
    process.exit(EXIT_AFTER_REPORTED_ERROR);
}
