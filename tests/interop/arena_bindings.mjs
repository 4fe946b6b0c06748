// Client bindings for Blackholio's public tables and client reducers (the arena module,
// demos/arena/module.py, whose schema equals the Rust module's: tests/data/blackholio.schema.json), written
// by hand in plain JS for the official TypeScript SDK (npm `spacetimedb`, pinned in package.json), in the
// shape of what `spacetime generate --lang typescript` makes for SDK 2.x, built only from the SDK's public
// exports. They declare `consume_entity_event` an event table, as the official web client's generated
// bindings do. Used by ts_arena.mjs (test_ts_arena.py).

import {
  reducerSchema as __reducerSchema,
  reducers as __reducers,
  schema as __schema,
  t as __t,
  table as __table,
} from 'spacetimedb';

import { moduleBindings } from './bindings_common.mjs';

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

// REMOTE_MODULE, the query builder, the reducers by accessor name and the connection classes
export const { tables, reducers, SubscriptionBuilder, DbConnectionBuilder, DbConnection } = moduleBindings(
  tablesSchema,
  reducersSchema
);
