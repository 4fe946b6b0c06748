// Client bindings for the quickstart chat module (demos/chat/module.py), written by hand in plain JS for the
// official TypeScript SDK 1.x (npm `spacetimedb@1.12.0`, installed under the alias `spacetimedb-v1`, see
// package.json), in the shape of what `spacetime generate --lang typescript` makes for SDK 1.12: `schema()`
// and `reducers()` take their tables and reducers as arguments, an index names its accessor with `name`,
// `tables` maps accessor names to table definitions and `query` is the query builder. Built only from the
// SDK's public exports; the types themselves are in chat_types.mjs. Used by ts_chat_v1.mjs
// (test_ts_server_v1.py).

import * as SDK_1 from 'spacetimedb-v1';

import { connectionBindings } from './bindings_common.mjs';
import { USER_IDENTITY_KEY, chatTypes } from './chat_types.mjs';

const { convertToAccessorMap, makeQueryBuilder, reducerSchema, reducers: __reducers, schema, t, table } = SDK_1;

// ---- types, table rows and reducer arguments ------------------------------------------------------------
const { Message, User, MessageRow, UserRow, reducerParams } = chatTypes(t);
export { Message, User };

// ---- the module ------------------------------------------------------------------------------------------
/** The schema of every table, as the module declares it (1.x: the tables as arguments). */
const tablesSchema = schema(
  table({ name: 'message', indexes: [], constraints: [] }, MessageRow),
  table(
    {
      name: 'user',
      indexes: [{ name: 'identity', algorithm: 'btree', columns: ['identity'] }],
      constraints: [{ name: USER_IDENTITY_KEY, constraint: 'unique', columns: ['identity'] }],
    },
    UserRow
  )
);

/** The client-callable reducers (lifecycle reducers are not part of the bindings). */
const reducersSchema = __reducers(
  reducerSchema('send_message', reducerParams.send_message),
  reducerSchema('set_name', reducerParams.set_name)
);

/** The tables by accessor name. */
export const tables = convertToAccessorMap(tablesSchema.schemaType.tables);

/** A query builder for the module's tables. */
export const query = makeQueryBuilder(tablesSchema.schemaType);

// REMOTE_MODULE, the reducers by accessor name and the connection classes
export const { reducers, SubscriptionBuilder, DbConnectionBuilder, DbConnection } = connectionBindings(
  SDK_1,
  tablesSchema,
  reducersSchema,
  '1.12.0'
);
