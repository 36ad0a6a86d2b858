/** The SVG charts: well-formed, every series and label present, gaps and NaN cells handled. */
import { describe, expect, test } from "vitest";

import { formatTick, heatmap, lineChart, niceTicks } from "../../src/plot/svg.js";

function wellFormed(svg: string): void {
  expect(svg.startsWith("<svg")).toBe(true);
  expect(svg.trim().endsWith("</svg>")).toBe(true);
  const opened = (svg.match(/<(text|svg)\b/g) ?? []).length;
  const closed = (svg.match(/<\/(text|svg)>/g) ?? []).length;
  expect(closed).toBe(opened);
  expect(svg).not.toMatch(/NaN|undefined|Infinity/);
}

describe("svg charts", () => {
  test("ticks are round and cover the range", () => {
    expect(niceTicks(0, 1)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(3.2, 7.9)).toEqual([4, 5, 6, 7]);
    expect(formatTick(1234567)).toBe("1.2e+6");
    expect(formatTick(0.12345)).toBe("0.123");
  });

  test("a line chart with categories, a dashed series, a gap and escaped names", () => {
    const svg = lineChart({
      title: "SARI <after> each stage",
      xLabel: "stage",
      yLabel: "SARI",
      xCategories: ["base", "simp", "empd"],
      series: [
        { name: "grown & tuned", y: [30, 33, 31] },
        { name: "scratch", y: [29, Number.NaN, 30], dashed: true },
      ],
    });
    wellFormed(svg);
    expect(svg).toContain("SARI &lt;after&gt; each stage");
    expect(svg).toContain("grown &amp; tuned");
    expect(svg).toContain('stroke-dasharray="6 4"');
    expect((svg.match(/<path d="M[^"]*"/g) ?? []).map((d) => (d.match(/M/g) ?? []).length)).toEqual([1, 2]);
  });

  test("a heat map labels every cell and greys NaN", () => {
    const svg = heatmap({ title: "forgetting", rows: ["a", "b"], columns: ["x", "y"], values: [[0.5, -0.25], [Number.NaN, 0]] });
    wellFormed(svg);
    expect(svg).toContain("#d9d9d9");
    expect(svg).toContain(">-0.25<");
    expect(svg).toContain("rgb(255,0,0)");
  });
});
