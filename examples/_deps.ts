// Re-exports used by the report, kept in one place.
export {
  fixed,
  lineChart,
  markdownTable,
  type Series,
  summarize,
} from "@d3pm/eval";
export { MetricsLog } from "@d3pm/train";
