// Generated from wit/waystream.wit by scripts/wit-types.mjs (jco); do not edit.
/// <reference path="./interfaces/waystream-transform-log.d.ts" />
/// <reference path="./interfaces/waystream-transform-transform.d.ts" />
/// <reference path="./interfaces/waystream-transform-types.d.ts" />
declare module 'waystream:transform/transform-module@0.3.1' {
  export type * as WaystreamTransformLog031 from 'waystream:transform/log@0.3.1'; // import waystream:transform/log@0.3.1
  export type * as WaystreamTransformTypes031 from 'waystream:transform/types@0.3.1'; // import waystream:transform/types@0.3.1
  export * as transform from 'waystream:transform/transform@0.3.1'; // export waystream:transform/transform@0.3.1
}
