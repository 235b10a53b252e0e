/** HTTP encoding of window.fedseg calls between the browser shim and the bridge server. */
export const BRIDGE_PREFIX = '/__fedseg';
export const SECRET_HEADER = 'x-fedseg-bridge';
/** For a request carrying bytes: the JSON of its other fields, and which field the body fills. */
export const JSON_HEADER = 'x-fedseg-json';
export const BINARY_FIELD_HEADER = 'x-fedseg-binary-field';
