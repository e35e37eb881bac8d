/**
 * libolm as WebAssembly (@towns-protocol/olm), loaded on first use only: the JS glue is its own chunk
 * and the .wasm a hashed asset fetched from our origin (the page's CSP allows compiling it through
 * 'wasm-unsafe-eval'). Nothing of it is downloaded until DMs are opened.
 */
import type { OlmImpl } from '@towns-protocol/olm';

let loading: Promise<OlmImpl> | undefined;

export function loadOlm(): Promise<OlmImpl> {
  loading ??= import('@towns-protocol/olm')
    .then((m) => m.default.initAsync())
    .catch((e) => {
      loading = undefined;
      throw e;
    });
  return loading;
}

export type { OlmImpl };
