/** Pure rendering of demo reports: tables, SVG charts, PNG slice pictures, report.html. */
export { renderReportHtml } from './html.js';
export { axialSlice, coronalSlice, LABEL_COLOURS, largestTumourSlice, renderPanels, stackRows, type RgbImage, type SlicePanel } from './overlay.js';
export { crc32, encodePng } from './png.js';
export { BaselineSchema, ComparisonRowSchema, DemoReportSchema, PrivacyRecordSchema, type PrivacyRecord, type ComparisonRow, RoundSchema, SiteDiceSchema, type BaselineResults, type DemoReport, type RegionDice, type RoundEntry, type SiteDice } from './schema.js';
export { barChart, escapeXml, lineChart, type Series } from './svg.js';
export { alignTable, formatBaselineTable, formatRoundTable } from './table.js';
