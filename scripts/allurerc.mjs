// Allure 3 configuration for pytest-baremetal reports (used by scripts/report.sh).
// Paths are relative to the repository root; ALLURE_RESULTS / ALLURE_REPORT / ALLURE_HISTORY
// override them (the tests render into temporary folders).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

const results = process.env.ALLURE_RESULTS ?? "reports/allure-results";
const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

// The plugin writes categories.json (Allure 2 format) and labels each failed test with
// `failure: <category name>`; Allure 3 matches categories on that label.
const categoriesFile = join(results, "categories.json");
const rules = existsSync(categoriesFile)
  ? JSON.parse(readFileSync(categoriesFile, "utf-8")).map((category) => ({
      name: category.name,
      matchers: { labels: { failure: `^${escape(category.name)}$` } },
      expand: true,
    }))
  : [];

export default {
  name: "pytest-baremetal",
  output: process.env.ALLURE_REPORT ?? "reports/allure-report",
  historyPath: process.env.ALLURE_HISTORY ?? "reports/allure-history.jsonl",
  historyLimit: 50,
  categories: { rules },
  plugins: {
    awesome: {
      options: {
        singleFile: true, // one index.html that works opened as a file or served
        reportName: "pytest-baremetal",
        groupBy: ["board", "parentSuite", "suite", "subSuite"],
      },
    },
  },
};
