import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './support/app';
import { configFieldNames } from './support/schema-fields';

describe('README', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const reference = readme.slice(readme.indexOf('<!-- config-reference'));

  test('GIVEN the config schema THEN every field a user can write is in the README reference', () => {
    const names = configFieldNames();
    const codeSpans = [...reference.matchAll(/`([^`]+)`/g)].map((m) => m[1] ?? '').join(' ');
    const missing = names.filter((name) => !new RegExp(`(^|[^A-Za-z])${name}([^A-Za-z]|$)`).test(codeSpans));
    expect(missing).toEqual([]);
  });

  test('GIVEN a repository name with "/" THEN the redeploy commands name the artifact by the stack output, not by a key built from the name', () => {
    const section = readme.slice(readme.indexOf("### Redeploying a previous commit's image"));
    const commands = section.slice(
      section.indexOf('```sh'),
      section.indexOf('```', section.indexOf('```sh') + 5),
    );
    expect(commands).toContain('--prefix <ArtifactKey>');
    expect(readme).not.toMatch(/artifacts\/<repository>/);
  });

  test('THEN it shows the two commands CI runs', () => {
    const ci = readFileSync(join(ROOT, '.ci', 'run'), 'utf8');
    expect(readme).toContain('npm ci && npx cdk synth');
    expect(readme).toContain('npm test');
    expect(ci).toContain('npm test');
    expect(ci).toContain('npx cdk synth');
  });
});
