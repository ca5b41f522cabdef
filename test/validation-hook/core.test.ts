import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { checkNewVersion, settingsFromEnvironment } from '../../lambda/validation-hook/core';

/** A local stand-in for the new task set behind the test listener: 200, 500, or no answer at all. */
let server: Server;
let base: string;
beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/health') res.writeHead(200).end('ok');
    else if (req.url === '/broken') res.writeHead(500).end('boom');
    // /hang: never answers
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('the validation check', () => {
  test('GIVEN the new version answers 200 as expected WHEN checked THEN Succeeded, and the log says what was called and what came back', async () => {
    const result = await checkNewVersion({ url: `${base}/health`, expectStatus: 200, timeoutMs: 2000 });
    expect(result.status).toBe('Succeeded');
    expect(result.summary).toMatch(
      new RegExp(`^GET ${base}/health \\(expecting 200\\): answered 200 after \\d+ ms$`),
    );
  });

  test('GIVEN the new version answers 500 WHEN checked THEN Failed, naming the status', async () => {
    const result = await checkNewVersion({ url: `${base}/broken`, expectStatus: 200, timeoutMs: 2000 });
    expect(result).toEqual({ status: 'Failed', summary: expect.stringContaining('answered 500') });
  });

  test('GIVEN the new version never answers WHEN checked THEN Failed once the timeout passes', async () => {
    const result = await checkNewVersion({ url: `${base}/hang`, expectStatus: 200, timeoutMs: 300 });
    expect(result).toEqual({ status: 'Failed', summary: expect.stringContaining('no answer within 300 ms') });
  });

  test('GIVEN nothing listens WHEN checked THEN Failed, saying the request failed', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const result = await checkNewVersion({
      url: `http://127.0.0.1:${port}/`,
      expectStatus: 200,
      timeoutMs: 2000,
    });
    expect(result).toEqual({ status: 'Failed', summary: expect.stringContaining('request failed') });
  });

  test('GIVEN a function environment without a URL WHEN read THEN it fails naming the variable', () => {
    expect(() => settingsFromEnvironment({ EXPECT_STATUS: '200', TIMEOUT_MS: '1000' })).toThrow(/TEST_URL/);
    expect(
      settingsFromEnvironment({ TEST_URL: 'http://x:8080/h', EXPECT_STATUS: '204', TIMEOUT_MS: '1000' }),
    ).toEqual({ url: 'http://x:8080/h', expectStatus: 204, timeoutMs: 1000 });
  });
});
