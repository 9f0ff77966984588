// Generated from wit/waystream.wit by scripts/wit-types.mjs (jco); do not edit.
/// <reference path="./interfaces/waystream-transform-log.d.ts" />
/// <reference path="./interfaces/waystream-transform-transform.d.ts" />
/// <reference path="./interfaces/waystream-transform-types.d.ts" />
declare module 'waystream:transform/transform-module@0.3.0' {
  export type * as WaystreamTransformLog030 from 'waystream:transform/log@0.3.0'; // import waystream:transform/log@0.3.0
  export type * as WaystreamTransformTypes030 from 'waystream:transform/types@0.3.0'; // import waystream:transform/types@0.3.0
  export * as transform from 'waystream:transform/transform@0.3.0'; // export waystream:transform/transform@0.3.0
}
