// Client bindings for Blackholio's public tables and client reducers (the arena module,
// demos/arena/module.py, whose schema equals the Rust module's: tests/data/blackholio.schema.json), written
// by hand in plain JS for the official TypeScript SDK (npm `spacetimedb`, pinned in package.json), in the
// shape of what `spacetime generate --lang typescript` makes for SDK 2.x, built only from the SDK's public
// exports. They declare `consume_entity_event` an event table, as the official web client's generated
// bindings do. Used by ts_arena.mjs (test_ts_arena.py).

import {
  DbConnectionBuilder as __DbConnectionBuilder,
  DbConnectionImpl as __DbConnectionImpl,
  SubscriptionBuilderImpl as __SubscriptionBuilderImpl,
  convertToAccessorMap as __convertToAccessorMap,
  makeQueryBuilder as __makeQueryBuilder,
  procedures as __procedures,
  reducerSchema as __reducerSchema,
  reducers as __reducers,
  schema as __schema,
  t as __t,
  table as __table,
} from 'spacetimedb';

/** The `DbVector2` product type. */
export const DbVector2 = __t.object('DbVector2', { x: __t.f32(), y: __t.f32() });

const CircleRow = __t.row({
  entity_id: __t.i32().primaryKey(),
  player_id: __t.i32(),
  direction: DbVector2,
  speed: __t.f32(),
  last_split_time: __t.timestamp(),
});
const ConfigRow = __t.row({ id: __t.i32().primaryKey(), world_size: __t.i64() });
const ConsumeEntityEventRow = __t.row({ consumed_entity_id: __t.i32(), consumer_entity_id: __t.i32() });
const EntityRow = __t.row({ entity_id: __t.i32().primaryKey(), position: DbVector2, mass: __t.i32() });
const FoodRow = __t.row({ entity_id: __t.i32().primaryKey() });
const PlayerRow = __t.row({ identity: __t.identity().primaryKey(), player_id: __t.i32(), name: __t.string() });

function pk(table, column) {
  return {
    name: table,
    indexes: [{ accessor: column, name: `${table}_${column}_idx_btree`, algorithm: 'btree', columns: [column] }],
    constraints: [{ name: `${table}_${column}_key`, constraint: 'unique', columns: [column] }],
  };
}

const tablesSchema = __schema({
  circle: __table(pk('circle', 'entity_id'), CircleRow),
  config: __table(pk('config', 'id'), ConfigRow),
  consume_entity_event: __table(
    { name: 'consume_entity_event', indexes: [], constraints: [], event: true },
    ConsumeEntityEventRow
  ),
  entity: __table(pk('entity', 'entity_id'), EntityRow),
  food: __table(pk('food', 'entity_id'), FoodRow),
  player: __table(pk('player', 'identity'), PlayerRow),
});

const reducersSchema = __reducers(
  __reducerSchema('enter_game', { name: __t.string() }),
  __reducerSchema('player_split', {}),
  __reducerSchema('respawn', {}),
  __reducerSchema('suicide', {}),
  __reducerSchema('update_player_input', { direction: DbVector2 })
);

const proceduresSchema = __procedures();

const REMOTE_MODULE = {
  versionInfo: { cliVersion: '2.0.0' },
  tables: tablesSchema.schemaType.tables,
  reducers: reducersSchema.reducersType.reducers,
  ...proceduresSchema,
};

export const tables = __makeQueryBuilder(tablesSchema.schemaType);
export const reducers = __convertToAccessorMap(reducersSchema.reducersType.reducers);

export class SubscriptionBuilder extends __SubscriptionBuilderImpl {}
export class DbConnectionBuilder extends __DbConnectionBuilder {}

/** A connection to a database that runs Blackholio. */
export class DbConnection extends __DbConnectionImpl {
  static builder = () => new DbConnectionBuilder(REMOTE_MODULE, config => new DbConnection(config));

  subscriptionBuilder = () => new SubscriptionBuilder(this);
}
