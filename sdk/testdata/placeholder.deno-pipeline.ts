// Stands in for the pipeline file when the SDK itself is type-checked; the
// runner's generated import map points "deno-ci:pipeline" at the real one.
import { Pipeline } from "deno-ci";

export default new Pipeline();
