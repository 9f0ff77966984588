/// <reference path="./wit/transform-module.d.ts" />
import type * as TransformInterface from 'waystream:transform/transform@0.3.1';
import type { Level, TransformClass } from './index.js';

/** The contract's `transform` export, as componentize-js expects it (generated from the WIT). */
export type TransformExport = typeof TransformInterface;
/** Makes `cls` the component's transform; `hostLog` is the contract's log import. */
export declare function exportTransform(cls: TransformClass, hostLog: (level: Level, message: string) => void): TransformExport;
