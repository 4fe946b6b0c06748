// The module-level part that every set of hand-written bindings shares (what `spacetime generate --lang
// typescript` repeats in each generated `index.ts` for SDK 2.x): REMOTE_MODULE, the query builder, the
// reducers by accessor name, and the DbConnection / DbConnectionBuilder / SubscriptionBuilder classes, built
// from a module's table and reducer schemas with the SDK's public exports only. Used by chat_bindings.mjs
// and arena_bindings.mjs.

import {
  DbConnectionBuilder as __DbConnectionBuilder,
  DbConnectionImpl as __DbConnectionImpl,
  SubscriptionBuilderImpl as __SubscriptionBuilderImpl,
  convertToAccessorMap as __convertToAccessorMap,
  makeQueryBuilder as __makeQueryBuilder,
  procedures as __procedures,
} from 'spacetimedb';

/**
 * The connection side of a module's bindings, from its `schema(...)` of tables and `reducers(...)`
 * (the module has no procedures): `tables` (each a query builder), `reducers` (by accessor name) and
 * the `DbConnection`, `DbConnectionBuilder` and `SubscriptionBuilder` classes.
 */
export function moduleBindings(tablesSchema, reducersSchema) {
  const REMOTE_MODULE = {
    versionInfo: { cliVersion: '2.0.0' },
    tables: tablesSchema.schemaType.tables,
    reducers: reducersSchema.reducersType.reducers,
    ...__procedures(),
  };

  class SubscriptionBuilder extends __SubscriptionBuilderImpl {}
  class DbConnectionBuilder extends __DbConnectionBuilder {}

  class DbConnection extends __DbConnectionImpl {
    static builder = () => new DbConnectionBuilder(REMOTE_MODULE, config => new DbConnection(config));

    subscriptionBuilder = () => new SubscriptionBuilder(this);
  }

  return {
    tables: __makeQueryBuilder(tablesSchema.schemaType),
    reducers: __convertToAccessorMap(reducersSchema.reducersType.reducers),
    SubscriptionBuilder,
    DbConnectionBuilder,
    DbConnection,
  };
}
