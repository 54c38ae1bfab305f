// Checks GitHub Actions workflows without GitHub:
//  - GitHub's own parser (@actions/workflow-parser, the one behind the Actions VS Code extension) validates each
//    file against the workflow schema and parses every ${{ }} expression, naming unknown keys and contexts;
//  - every `needs` names a job of the file, every steps.<id> reference an earlier step of the same job;
//  - every run: script passes `bash -n` (expressions replaced by a placeholder first);
//  - every action is pinned by a full commit SHA (a tag can be moved), and every checkout keeps no credentials.
// Then lists each step for the .NET tests to check its commands against the repository.
// Usage: node check-workflows.mjs <file>... ; prints {problems, steps}; exits 1 when there are problems.
import { register } from 'node:module';
import { pathToFileURL } from 'node:url';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { parse } from 'yaml';

register('./json-import-hooks.mjs', pathToFileURL(`${import.meta.dirname}/`));
const { parseWorkflow, convertWorkflowTemplate, NoOperationTraceWriter } = await import('@actions/workflow-parser');

const problems = [];
const steps = [];
const jobSummaries = [];
for (const file of process.argv.slice(2)) {
  const text = readFileSync(file, 'utf8');
  const parsed = parseWorkflow({ name: file, content: text }, new NoOperationTraceWriter());
  if (parsed.value) await convertWorkflowTemplate(parsed.context, parsed.value);
  problems.push(...new Set(parsed.context.errors.getErrors().map(e => e.message)));

  let workflow;
  try {
    workflow = parse(text);
  } catch (error) {
    problems.push(`${file}: YAML does not parse: ${error.message}`);
    continue;
  }
  const jobs = workflow?.jobs ?? {};
  for (const [jobId, job] of Object.entries(jobs)) {
    jobSummaries.push({
      file,
      job: jobId,
      needs: [job.needs ?? []].flat(),
      if: job.if ?? null,
      environment: typeof job.environment === 'object' ? job.environment?.name ?? null : job.environment ?? null,
      permissions: job.permissions ?? null,
    });
    for (const need of [job.needs ?? []].flat()) {
      if (!(need in jobs)) problems.push(`${file}: job ${jobId} needs "${need}", which is not a job`);
    }
    const seen = new Set();
    for (const [index, step] of (job.steps ?? []).entries()) {
      const label = `${file}: job ${jobId}, step ${step.name ?? step.uses ?? index + 1}`;
      for (const ref of JSON.stringify(step).matchAll(/steps\.([A-Za-z_][\w-]*)\./g)) {
        if (!seen.has(ref[1])) problems.push(`${label}: refers to steps.${ref[1]}, not an earlier step of the job`);
      }
      if (typeof step.run === 'string') {
        const script = step.run.replace(/\$\{\{[\s\S]*?\}\}/g, 'EXPRESSION');
        const check = spawnSync('bash', ['-n', '-c', script], { encoding: 'utf8' });
        if (check.status !== 0) problems.push(`${label}: bash -n: ${check.stderr.trim()}`);
      }
      if (typeof step.uses === 'string' && !step.uses.startsWith('./') && !/^[^@]+@[0-9a-f]{40}$/.test(step.uses)) {
        problems.push(`${label}: ${step.uses} is not pinned by a full commit SHA`);
      }
      if (typeof step.uses === 'string' && step.uses.startsWith('actions/checkout@') && step.with?.['persist-credentials'] !== false) {
        problems.push(`${label}: checkout must set persist-credentials: false (the token would stay in .git/config for every later step)`);
      }
      if (step.id) seen.add(step.id);
      steps.push({
        file,
        job: jobId,
        name: step.name ?? null,
        id: step.id ?? null,
        if: step.if ?? null,
        uses: step.uses ?? null,
        run: step.run ?? null,
        workingDirectory: step['working-directory'] ?? null,
        with: step.with ?? null,
      });
    }
  }
}
process.stdout.write(JSON.stringify({ problems, steps, jobs: jobSummaries }, null, 2) + '\n');
process.exit(problems.length > 0 ? 1 : 0);
