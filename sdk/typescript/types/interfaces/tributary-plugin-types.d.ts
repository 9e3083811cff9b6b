// Generated from proto/wit (worlds `connector` and `channel`) by `jco guest-types` through sdk/typescript/scripts/generate-types.mjs; do not edit.
declare module 'tributary:plugin/types@0.1.0' {
  /**
   * A JSON document, as text.
   */
  export type Json = string;
  /**
   * A configuration field that is missing or wrong.
   */
  export interface ConfigProblem {
    /**
     * The field's path, such as `token` or `auth.user`.
     */
    field: string,
    /**
     * What is wrong with it.
     */
    message: string,
  }
  /**
   * An error status from a remote service.
   */
  export interface HttpProblem {
    /**
     * The HTTP status.
     */
    status: number,
    /**
     * What was asked and the start of the answer.
     */
    message: string,
  }
  /**
   * Why a call failed. `denied` names the missing permission, `limit` the limit exceeded.
   */
  export type PluginError = PluginErrorDenied | PluginErrorLimit | PluginErrorConfig | PluginErrorHttp | PluginErrorTransient | PluginErrorOther;
  /**
   * The manifest does not grant it; the text names the permission.
   */
  export interface PluginErrorDenied {
    tag: 'denied',
    val: string,
  }
  /**
   * A limit of the sandbox was reached; the text names it.
   */
  export interface PluginErrorLimit {
    tag: 'limit',
    val: string,
  }
  /**
   * A field of the instance's configuration is missing or wrong.
   */
  export interface PluginErrorConfig {
    tag: 'config',
    val: ConfigProblem,
  }
  /**
   * The remote service answered with an error status.
   */
  export interface PluginErrorHttp {
    tag: 'http',
    val: HttpProblem,
  }
  /**
   * A condition that may pass: a timeout, a refused connection.
   */
  export interface PluginErrorTransient {
    tag: 'transient',
    val: string,
  }
  /**
   * Anything else.
   */
  export interface PluginErrorOther {
    tag: 'other',
    val: string,
  }
  /**
   * One HTTP header.
   */
  export interface Header {
    /**
     * Its name.
     */
    name: string,
    /**
     * Its value.
     */
    value: string,
  }
}
