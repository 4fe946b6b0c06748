// The module-level part that every set of hand-written bindings shares (what `spacetime generate --lang
// typescript` repeats in each generated `index.ts`): REMOTE_MODULE, the reducers by accessor name, and the
// DbConnection / DbConnectionBuilder / SubscriptionBuilder classes, built from a module's table and reducer
// schemas with an SDK's public exports only. The SDK 1.x (spacetimedb@1.12.0) and 2.x bindings have the same
// shape here; they differ in how tables and schemas are declared (chat_bindings.mjs, chat_bindings_v1.mjs,
// arena_bindings.mjs) and in what `tables` is.

import * as SDK_2 from 'spacetimedb';

/**
 * The connection side of a module's bindings for the SDK module `sdk` (the namespace of `spacetimedb` or of
 * the `spacetimedb-v1` alias), from its `schema(...)` of tables and `reducers(...)` (the module has no
 * procedures): `REMOTE_MODULE`, `reducers` (by accessor name) and the `DbConnection`,
 * `DbConnectionBuilder` and `SubscriptionBuilder` classes. `cliVersion` is what the generated bindings
 * would record (the SDK's builder refuses anything older than 1.4.0).
 */
export function connectionBindings(sdk, tablesSchema, reducersSchema, cliVersion) {
  const REMOTE_MODULE = {
    versionInfo: { cliVersion },
    tables: tablesSchema.schemaType.tables,
    reducers: reducersSchema.reducersType.reducers,
    ...sdk.procedures(),
  };

  class SubscriptionBuilder extends sdk.SubscriptionBuilderImpl {}
  class DbConnectionBuilder extends sdk.DbConnectionBuilder {}

  class DbConnection extends sdk.DbConnectionImpl {
    static builder = () => new DbConnectionBuilder(REMOTE_MODULE, config => new DbConnection(config));

    subscriptionBuilder = () => new SubscriptionBuilder(this);
  }

  return {
    REMOTE_MODULE,
    reducers: sdk.convertToAccessorMap(reducersSchema.reducersType.reducers),
    SubscriptionBuilder,
    DbConnectionBuilder,
    DbConnection,
  };
}

/**
 * The connection side of a module's bindings for SDK 2.x (npm `spacetimedb`): `tables` (each a query
 * builder), `reducers` (by accessor name) and the connection classes.
 */
export function moduleBindings(tablesSchema, reducersSchema) {
  return {
    tables: SDK_2.makeQueryBuilder(tablesSchema.schemaType),
    ...connectionBindings(SDK_2, tablesSchema, reducersSchema, '2.0.0'),
  };
}
