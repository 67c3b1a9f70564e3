// The SCAYLE Storefront SDK as an app uses it: it takes a host, never a
// path prefix, and only speaks HTTPS (https://${host}${path}). Pointed at a
// sidekey tenant listener with tls: local; the local CA is trusted through
// NODE_EXTRA_CA_CERTS. Prints the answer of brands.getById(7) as JSON.
const { StorefrontAPIClient } = require(process.env.SDK_MODULE);

(async () => {
  const client = new StorefrontAPIClient({ host: process.env.SIDEKEY_HOST, shopId: 1001 });
  const brand = await client.brands.getById(7);
  process.stdout.write(JSON.stringify(brand));
})().catch((err) => {
  console.error(err && err.cause ? err.cause : err);
  process.exit(1);
});
