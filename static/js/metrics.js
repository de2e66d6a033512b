// Charts of the metrics page, drawn with Chart.js from the figures embedded in the page.
const metrics = JSON.parse(document.getElementById("metrics-data").textContent);
const days = metrics.trend.map((day) => day.date.slice(5));
const style = getComputedStyle(document.documentElement);
const colour = (name) => style.getPropertyValue(name).trim();

Chart.defaults.font.family = style.fontFamily;
Chart.defaults.color = colour("--muted");
Chart.defaults.maintainAspectRatio = false;

new Chart(document.getElementById("chart-success"), {
  data: {
    labels: days,
    datasets: [
      { type: "bar", label: "runs", data: metrics.trend.map((day) => day.runs), backgroundColor: colour("--border-strong"), yAxisID: "runs", order: 2 },
      { type: "line", label: "success rate %", data: metrics.trend.map((day) => (day.success_rate === null ? null : Math.round(day.success_rate * 100))),
        borderColor: colour("--green"), backgroundColor: colour("--green"), spanGaps: true, tension: 0.25, yAxisID: "rate", order: 1 },
    ],
  },
  options: {
    interaction: { mode: "index", intersect: false },
    scales: {
      runs: { position: "left", beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "runs" } },
      rate: { position: "right", min: 0, max: 100, grid: { drawOnChartArea: false }, title: { display: true, text: "success %" } },
    },
  },
});

const seconds = (value) => (value === null ? null : Math.round(value * 10) / 10);
new Chart(document.getElementById("chart-duration"), {
  type: "line",
  data: {
    labels: days,
    datasets: [
      { label: "mean duration (s)", data: metrics.trend.map((day) => seconds(day.duration_seconds.mean)), borderColor: colour("--blue"), backgroundColor: colour("--blue"), spanGaps: true, tension: 0.25 },
      { label: "p95 duration (s)", data: metrics.trend.map((day) => seconds(day.duration_seconds.p95)), borderColor: colour("--violet"), backgroundColor: colour("--violet"), borderDash: [5, 4], spanGaps: true, tension: 0.25 },
      { label: "mean queue time (s)", data: metrics.trend.map((day) => seconds(day.queue_seconds.mean)), borderColor: colour("--amber"), backgroundColor: colour("--amber"), spanGaps: true, tension: 0.25 },
    ],
  },
  options: { interaction: { mode: "index", intersect: false }, scales: { y: { beginAtZero: true, title: { display: true, text: "seconds" } } } },
});
