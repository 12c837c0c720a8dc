// Draws the adoption charts from the JSON that the page embeds with json_script: bars for
// proposals and adopted proposals, a line for the adoption rate on its own 0–100 % axis.
// Kept out of the page so a Content Security Policy can forbid inline scripts. The tables on
// the page carry the same figures; the charts are a picture of them.
(function () {
  "use strict";
  var source = document.getElementById("adoption-chart-data");
  if (!source || typeof window.Chart === "undefined") {
    return;
  }
  var data = JSON.parse(source.textContent);
  var styles = getComputedStyle(document.body);
  var reduceMotion = window.matchMedia("(prefers-reduced-motion: reduce)").matches;

  // Canvas text does not inherit CSS: give it the page's Japanese-capable font stack.
  Chart.defaults.font.family = styles.fontFamily;
  Chart.defaults.font.size = 13;
  Chart.defaults.color = "#1d2a2f";

  function draw(canvas, series) {
    return new Chart(canvas, {
      data: {
        labels: series.labels,
        // Bars first so the legend reads proposals, adopted, rate; the line's lower ``order``
        // draws it on top of the bars.
        datasets: [
          {
            type: "bar",
            label: data.text.proposals,
            data: series.proposals,
            yAxisID: "count",
            backgroundColor: "#9cc7bb",
            categoryPercentage: 0.55,
            barPercentage: 0.9,
            order: 1,
          },
          {
            type: "bar",
            label: data.text.adopted,
            data: series.adopted,
            yAxisID: "count",
            backgroundColor: "#0d5c4c",
            categoryPercentage: 0.55,
            barPercentage: 0.9,
            order: 1,
          },
          {
            type: "line",
            label: data.text.rate,
            data: series.rate,
            yAxisID: "rate",
            borderColor: "#b4530f",
            backgroundColor: "#b4530f",
            pointRadius: 4,
            pointStyle: "rectRot",
            borderWidth: 2,
            spanGaps: true,
            clip: false, // a 100% point sits on the chart's top edge: do not cut it in half
            order: 0,
          },
        ],
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        layout: { padding: { top: 8 } },
        animation: reduceMotion ? false : { duration: 400 },
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { ticks: { maxRotation: 0, autoSkipPadding: 8 } },
          count: {
            type: "linear",
            position: "left",
            beginAtZero: true,
            ticks: { precision: 0 },
            title: { display: true, text: data.text.count_axis },
          },
          rate: {
            type: "linear",
            position: "right",
            min: 0,
            max: 100,
            grid: { drawOnChartArea: false },
            title: { display: true, text: data.text.rate_axis },
            ticks: {
              callback: function (value) {
                return value + "%";
              },
            },
          },
        },
        plugins: {
          legend: {
            position: "bottom",
            labels: {
              sort: function (a, b) {
                return a.datasetIndex - b.datasetIndex;
              },
            },
          },
          tooltip: {
            callbacks: {
              label: function (item) {
                var suffix = item.dataset.yAxisID === "rate" ? "%" : "";
                return item.dataset.label + ": " + item.formattedValue + suffix;
              },
            },
          },
        },
      },
    });
  }

  document.querySelectorAll("canvas[data-level]").forEach(function (canvas) {
    var series = data.levels[canvas.dataset.level];
    if (series && series.labels.length) {
      draw(canvas, series);
    }
  });
})();
