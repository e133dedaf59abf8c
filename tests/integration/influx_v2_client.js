// tests/integration/influx_v2_client.js: writes points to vigild through InfluxData's official
// JavaScript client (@influxdata/influxdb-client, installed by tools/install-deps; found
// through NODE_PATH), for test_influx_v2.py. Reads one JSON job on argv[2]:
//   {url, token, org, bucket, precision, batchSize, maxRetries, retryDelay (ms), defaultTags: {k: v},
//    points: [{measurement, tags: {k: v}, fields: {k: number}, ts}], records: ["raw line"]}
// (ts in the write's precision, a number or, beyond 2^53 as nanoseconds are, a string)
// writes the points with the client's WriteApi (writePoint, then writeRecord for the raw
// lines; batches of batchSize, flush, close) and prints one JSON line:
//   {"ok": true, "attempts": N}  or  {"ok": false, "attempts": N, "storedLater": L,
//                                     "statusCode": S, "code": "...", "message": "...",
//                                     "platformCode": "...", "retryAfter": R, "name": "..."}
// (code and message from the body, platformCode the X-Platform-Error-Code header the client kept,
// retryAfter the client's reading of Retry-After: 0 without one) where attempts counts the failed
// requests the client reported (writeFailed) and so shows whether it retried, and storedLater the
// lines its retries wrote after the first error (with waitRetriesMs in the job, the time it lets
// them run). "ok" means every line was answered 204: flush() awaits only the batch it sends, not
// those the buffer sent on its own when it filled (batchSize), so the script waits for their
// answers too (writeSuccess / writeFailed; at most waitAllMs, default 30 s) before it reports and
// exits. Exits 0 either way; 2 on a bad job.
'use strict';

const {InfluxDB, Point} = require('@influxdata/influxdb-client');

async function main() {
    const job = JSON.parse(process.argv[2] || 'null');
    if (!job || !job.url || !Array.isArray(job.points))
        return 2;
    let attempts = 0;
    let firstError = null; // the first error writeFailed saw, of any batch
    let written = 0; // lines answered 204 (writeSuccess), of any batch, retries included
    const want = job.points.length + (job.records || []).length;
    const writeOptions = {
        batchSize: job.batchSize || 1000,
        flushInterval: 0,
        // Retries of a retriable error come quickly (the test is bounded): the client's own
        // rule decides which errors those are (it retries 429 and 5xx, not other 4xx).
        maxRetries: job.maxRetries === undefined ? 2 : job.maxRetries,
        minRetryDelay: job.retryDelay || 50,
        maxRetryDelay: job.retryDelay || 100,
        retryJitter: 0,
        maxRetryTime: 10000,
        writeFailed(error, lines, attempt) {
            attempts++;
            if (firstError === null)
                firstError = error;
            return undefined; // the client's default: retry when it can
        },
        writeSuccess(lines) {
            written += lines.length;
        },
    };
    const client = new InfluxDB({url: job.url, token: job.token || undefined, timeout: 20000});
    const api = client.getWriteApi(job.org, job.bucket, job.precision || 'ns', writeOptions);
    if (job.defaultTags)
        api.useDefaultTags(job.defaultTags);
    for (const p of job.points) {
        const point = new Point(p.measurement);
        for (const [k, v] of Object.entries(p.tags || {}))
            point.tag(k, v);
        for (const [k, v] of Object.entries(p.fields || {}))
            point.floatField(k, v);
        if (p.ts !== undefined)
            point.timestamp(String(p.ts)); // in the write's precision
        api.writePoint(point);
    }
    for (const line of job.records || [])
        api.writeRecord(line);
    const sleep = (ms) => new Promise((res) => setTimeout(res, ms));
    let e = null;
    try {
        await api.flush();
    } catch (err) {
        e = err;
    }
    if (e === null) {
        // The batches sent when the buffer filled may still be in flight: wait for them.
        const until = Date.now() + (job.waitAllMs || 30000);
        while (written < want && firstError === null && Date.now() < until)
            await sleep(20);
        if (written === want && firstError === null) {
            await api.close();
            console.log(JSON.stringify({ok: true, attempts}));
            return 0;
        }
        e = firstError || new Error(`${written} of ${want} lines answered 204 in time`);
    }
    // A retriable error rejects the flush at once and leaves the lines to the client's
    // retry buffer: with waitRetriesMs, the retries run (counted by writeFailed and
    // writeSuccess) until they wrote everything, gave up or the time is over.
    const before = written;
    const until = Date.now() + (job.waitRetriesMs || 0);
    const limit = writeOptions.maxRetries + 1;
    while (Date.now() < until && written < want && attempts < limit)
        await sleep(50);
    const storedLater = written - before; // lines a retry wrote after the error
    let code, message;
    if (e.json) {
        code = e.json.code;
        message = e.json.message;
    }
    console.log(JSON.stringify({
        ok: false,
        attempts,
        storedLater,
        statusCode: e.statusCode,
        code,
        message: message || e.message,
        platformCode: e.headers ? e.headers['x-platform-error-code'] : undefined,
        retryAfter: typeof e.retryAfter === 'function' ? e.retryAfter() : undefined,
        name: e.name,
    }));
    try {
        await api.close();
    } catch (ignored) {
        // close() sends what the write buffer holds (nothing: flushed) and drops the retry
        // buffer; an error of it is the one above
    }
    return 0;
}

main().then((rc) => process.exit(rc), (e) => {
    console.error(e && e.stack ? e.stack : String(e));
    process.exit(3);
});
