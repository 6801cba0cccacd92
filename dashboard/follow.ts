/**
 * Following an append-only file as it grows: {@linkcode followLines} and
 * {@linkcode sleep} live in `@d3pm/core` (a metrics log is read with the
 * same reader, a line at a time) and are re-exported here for the server.
 *
 * @module
 */
export {
  type Followed,
  followLines,
  type FollowOptions,
  sleep,
} from "@d3pm/core";
