import dagre from "@dagrejs/dagre";
import type { WorkflowStepDependencyRecord, WorkflowStepRecord } from "../store/index.ts";
import { type Html, html } from "./html.ts";

/*
 * A run's DAG as an inline SVG, laid out on the server with dagre: nodes coloured by status (CSS
 * classes `s-<status>`), `afterSuccess` edges solid and `afterTerminal` edges dashed, each node a
 * link to its job. Layout depends only on the graph's shape, so it is cached per run and shape:
 * a live refresh repaints statuses without laying the graph out again.
 */

const NODE_HEIGHT = 44;
const CHAR_WIDTH = 7.4;
const SUB_CHAR_WIDTH = 5.9;
const PAD = 12;

interface Layout {
  width: number;
  height: number;
  nodes: Map<string, { x: number; y: number; width: number }>;
  edges: { from: string; to: string; points: { x: number; y: number }[] }[];
}

const cache = new Map<string, Layout>();
const CACHE_MAX = 200;

function shapeKey(runId: string, steps: WorkflowStepRecord[], edges: WorkflowStepDependencyRecord[]): string {
  return `${runId}:${steps.length}:${edges.length}`;
}

/** Wide enough for the key (12 px) and the status line (10.5 px); long labels are clipped at 320 px. */
function nodeWidth(step: WorkflowStepRecord): number {
  const key = step.stepKey.length * CHAR_WIDTH;
  const sub = subLine(step).length * SUB_CHAR_WIDTH;
  return Math.min(320, Math.max(110, Math.round(Math.max(key, sub)) + 2 * PAD));
}

function subLine(step: WorkflowStepRecord): string {
  return `${step.status} · ${step.jobType ?? "external gate"}`;
}

function layOut(steps: WorkflowStepRecord[], edges: WorkflowStepDependencyRecord[]): Layout {
  const graph = new dagre.graphlib.Graph();
  graph.setGraph({ rankdir: "LR", nodesep: 18, ranksep: 56, marginx: 8, marginy: 8 });
  graph.setDefaultEdgeLabel(() => ({}));
  for (const step of steps) graph.setNode(step.stepKey, { width: nodeWidth(step), height: NODE_HEIGHT });
  for (const edge of edges) graph.setEdge(edge.prerequisiteStepKey, edge.dependentStepKey);
  dagre.layout(graph);
  const nodes = new Map<string, { x: number; y: number; width: number }>();
  for (const key of graph.nodes()) {
    const node = graph.node(key);
    nodes.set(key, { x: node.x, y: node.y, width: node.width });
  }
  const laidEdges = graph.edges().map((e: { v: string; w: string }) => ({
    from: e.v,
    to: e.w,
    points: ((graph.edge(e) as { points?: { x: number; y: number }[] }).points ?? []).map((p) => ({ x: p.x, y: p.y })),
  }));
  const label = graph.graph();
  return { width: Math.ceil(label.width ?? 0), height: Math.ceil(label.height ?? 0), nodes, edges: laidEdges };
}

function cachedLayout(runId: string, steps: WorkflowStepRecord[], edges: WorkflowStepDependencyRecord[]): Layout {
  const key = shapeKey(runId, steps, edges);
  let layout = cache.get(key);
  if (layout === undefined) {
    layout = layOut(steps, edges);
    if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!);
    cache.set(key, layout);
  }
  return layout;
}

const f = (n: number) => Math.round(n * 10) / 10;

function arrowHead(points: { x: number; y: number }[]): string {
  const end = points.at(-1)!;
  const before = points.at(-2) ?? end;
  const angle = Math.atan2(end.y - before.y, end.x - before.x);
  const corner = (turn: number) => `${f(end.x - 8 * Math.cos(angle + turn))},${f(end.y - 8 * Math.sin(angle + turn))}`;
  return `${f(end.x)},${f(end.y)} ${corner(0.4)} ${corner(-0.4)}`;
}

/** The run's DAG as SVG; `jobHref` links a step with a job to its page. */
export function renderDag(
  runId: string,
  steps: WorkflowStepRecord[],
  edges: WorkflowStepDependencyRecord[],
  jobHref: (jobId: string) => string,
): Html {
  if (steps.length === 0) return html`<p class="muted">No steps.</p>`;
  const layout = cachedLayout(runId, steps, edges);
  const modes = new Map(edges.map((e) => [`${e.prerequisiteStepKey}\u0000${e.dependentStepKey}`, e.releaseMode]));
  const edgeMarkup = layout.edges.map((edge) => {
    if (edge.points.length < 2) return html``;
    const kind = modes.get(`${edge.from}\u0000${edge.to}`) === "ON_TERMINAL" ? "on-terminal" : "on-success";
    const path = edge.points.map((p, i) => `${i === 0 ? "M" : "L"}${f(p.x)},${f(p.y)}`).join(" ");
    return html`<g data-edge="${edge.from}->${edge.to}" data-kind="${kind}"><path class="edge ${kind}" d="${path}"/><polygon class="arrow ${kind}" points="${arrowHead(edge.points)}"/></g>`;
  });
  const nodeMarkup = steps.map((step) => {
    const box = layout.nodes.get(step.stepKey);
    if (box === undefined) return html``;
    const x = f(box.x - box.width / 2);
    const y = f(box.y - NODE_HEIGHT / 2);
    const status = step.status.toLowerCase();
    const inner = html`<rect x="${x}" y="${y}" width="${box.width}" height="${NODE_HEIGHT}" rx="6"/>
      <text x="${f(x + PAD)}" y="${f(y + 18)}">${step.stepKey}</text>
      <text class="sub" x="${f(x + PAD)}" y="${f(y + 34)}">${subLine(step)}</text>
      <title>${step.stepKey}: ${step.status}${step.statusReason ? ` (${step.statusReason})` : ""}</title>`;
    const attrs = html`class="node s-${status}" data-step="${step.stepKey}" data-status="${step.status}"`;
    return step.jobId === null
      ? html`<g ${attrs}>${inner}</g>`
      : html`<a href="${jobHref(step.jobId)}"><g ${attrs}>${inner}</g></a>`;
  });
  return html`<svg class="dag" xmlns="http://www.w3.org/2000/svg" width="${layout.width}" height="${layout.height}"
    viewBox="0 0 ${layout.width} ${layout.height}" role="img" aria-label="Workflow DAG">${edgeMarkup}${nodeMarkup}</svg>`;
}

/** The key under the DAG: node colours and the two edge kinds. */
export function dagLegend(): Html {
  const line = (kind: string) =>
    html`<svg class="key" width="34" height="10" aria-hidden="true"><path class="edge ${kind}" d="M2,5 L32,5" stroke="currentColor"/></svg>`;
  return html`<p class="legend">${line("on-success")} after success · ${line("on-terminal")} after any outcome
    (<code>afterTerminal</code>) · dashed gate = waiting for an external decision</p>`;
}
