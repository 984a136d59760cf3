// aws-store-child.mjs: runs one local AWS store in its own process, so a
// test can kill it (SIGKILL, a real outage) and start it again on the same
// port with the same data directory.
//   node aws-store-child.mjs dynalite PORT DIR
//   node aws-store-child.mjs s3rver PORT DIR
// Prints "listening PORT" once it accepts connections.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const [kind, portArg, dir] = process.argv.slice(2);
const port = Number(portArg);

if (kind === 'dynalite') {
  const dynalite = require('dynalite');
  // path: leveldb on disk, so a restarted server has the table again.
  const server = dynalite({ path: dir, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  server.listen(port, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
} else if (kind === 's3rver') {
  const S3rver = require('s3rver');
  // Requests reach s3rver only through the verifying front, which checks
  // the real signature and strips it; s3rver's own check (fixed keys) is
  // off.
  const server = new S3rver({
    port,
    address: '127.0.0.1',
    silent: true,
    directory: dir,
    allowMismatchedSignatures: true,
    vhostBuckets: false,
  });
  server.run().then(() => console.log(`listening ${port}`));
} else {
  console.error(`unknown store ${kind}`);
  process.exit(2);
}
