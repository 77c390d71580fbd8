// The report every Node peer script prints: one JSON line on stdout, read by the Python test.

// Runs the script's main() and prints its report as one JSON line, whatever happens (an error goes in
// report.error), then exits: the Python side reads that line.
function printReport(main, report) {
  main()
    .catch((err) => { report.error = String(err && err.stack ? err.stack : err); })
    .finally(() => {
      console.log(JSON.stringify(report));
      process.exit(0);
    });
}

module.exports = { printReport };
