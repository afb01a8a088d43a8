"""Database helpers the ledger and the engine share."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, Generic, TypeVar

from django.db import DEFAULT_DB_ALIAS, connection, connections, models, transaction
from django.db.models import Expression, Func, QuerySet
from django.db.models.constants import OnConflict
from django.db.models.query import get_related_populators
from django.db.models.sql import UpdateQuery
from django.db.transaction import TransactionManagementError

M = TypeVar("M", bound=models.Model)
T = TypeVar("T")


def update_each(instances: Sequence[models.Model], fields: Sequence[str]) -> None:
    """Write `fields` of each instance to its row, in one round trip.

    On PostgreSQL one UPDATE joins the rows to one array per column
    (`unnest`); elsewhere one UPDATE by primary key is prepared once and run
    for each row.  Django's `bulk_update` builds a CASE WHEN per field over
    every row, which for a batch's few dozen rows costs more to compile than
    the update itself.
    """
    if not instances:
        return
    meta = instances[0]._meta
    concrete = [meta.get_field(name) for name in fields]
    columns = [field for field in concrete if isinstance(field, models.Field)]
    pk = meta.pk
    if len(columns) != len(fields) or pk is None:
        raise ValueError(f"{meta.label}: only concrete columns can be updated, not {fields}")
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    db = _database()
    converters = [(field.attname, _converter(field, db)) for field in columns]
    values = [
        [convert(getattr(instance, attname)) for attname, convert in converters]
        for instance in instances
    ]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            names = [quote(str(field.column)) for field in columns]
            arrays = ", ".join(f"%s::{field.db_type(connection)}[]" for field in [pk, *columns])
            cursor.execute(
                f"UPDATE {table} AS t SET "  # noqa: S608 (model table and column names)
                + ", ".join(f"{name} = v.{name}" for name in names)
                + f" FROM unnest({arrays}) AS v(_pk, {', '.join(names)})"
                + f" WHERE t.{quote(str(pk.column))} = v._pk",
                [[instance.pk for instance in instances], *map(list, zip(*values, strict=True))],
            )
            return
        cursor.executemany(
            f"UPDATE {table} SET "  # noqa: S608 (model table and column names)
            + ", ".join(f"{quote(str(field.column))} = %s" for field in columns)
            + f" WHERE {quote(str(pk.column))} = %s",
            [[*row, instance.pk] for row, instance in zip(values, instances, strict=True)],
        )


def insert_rows(
    model: type[models.Model], fields: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """Insert plain tuples of `fields` values into `model`'s table; returns how many.

    For loading many rows at once (a simulation's history): no model instance
    is built, and each column's value goes through the one conversion its
    field needs on this database (datetimes, JSON), chosen once per column.
    Constraints are the table's own; nothing else is checked.
    """
    meta = model._meta
    columns = [meta.get_field(name) for name in fields]
    concrete = [field for field in columns if isinstance(field, models.Field)]
    if len(concrete) != len(fields):
        raise ValueError(f"{meta.label}: only concrete columns can be inserted, not {fields}")
    # Only the columns whose values change on the way (datetimes, JSON) are touched.
    convert = [
        (place, converter)
        for place, field in enumerate(concrete)
        if (converter := _converter(field)) is not _as_is
    ]
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(meta.db_table)} "  # noqa: S608 (model table and column names)
        f"({', '.join(quote(str(field.column)) for field in concrete)}) "
        f"VALUES ({', '.join(['%s'] * len(concrete))})"
    )
    count = 0
    remaining = iter(rows)
    with connection.cursor() as cursor:
        while batch := [list(row) for row in itertools.islice(remaining, 5_000)]:
            for row in batch:
                if len(row) != len(concrete):
                    raise ValueError(f"{meta.label}: a row of {len(row)} values for {fields}")
                for place, converter in convert:
                    row[place] = converter(row[place])
            cursor.executemany(sql, batch)
            count += len(batch)
    return count


def bulk_insert(instances: Sequence[M], *, ignore_conflicts: bool = False) -> Sequence[M]:
    """`QuerySet.bulk_create` for the hot paths: the same rows, and the same primary keys set
    on the instances (RETURNING), without compiling an INSERT for every batch.

    Django prepares each value through its field and compiles the statement at
    every call: for a batch's few dozen rows, more work than the insert itself.
    Here each column takes the one conversion its field needs on this database
    (`_converter`), chosen once per model and database.  As with bulk_create, a
    related object assigned before it was saved lends its primary key now, and
    with `ignore_conflicts` a row that breaks a constraint is skipped and no
    primary key is set.  Only new instances (no primary key yet), all of one model.
    """
    if not instances:
        return instances
    db = _database()
    model = type(instances[0])
    shape = _per_database(
        _INSERT_SHAPES,
        (model, ignore_conflicts),
        lambda db: _InsertShape(model, db, ignore_conflicts=ignore_conflicts),
    )
    rows = []
    for instance in instances:
        if type(instance) is not shape.model or instance.pk is not None:
            raise ValueError(f"bulk_insert: only new {shape.model.__name__} rows, not {instance!r}")
        rows.append([convert(instance) for convert in shape.converters])
    size = max(db.ops.bulk_batch_size(shape.fields, rows), 1)
    with transaction.atomic(using=db.alias, savepoint=False), db.cursor() as cursor:
        for start in range(0, len(rows), size):
            batch = rows[start : start + size]
            cursor.execute(shape.sql(len(batch)), [value for row in batch for value in row])
            if shape.returning:
                for instance, (pk,) in zip(
                    instances[start : start + size], cursor.fetchall(), strict=True
                ):
                    instance.pk = pk
                    instance._state.adding = False
                    instance._state.db = db.alias
    return instances


class _InsertShape:
    """One model's INSERT on one database: its columns, their conversions, its SQL."""

    def __init__(self, model: type[models.Model], db: Any, *, ignore_conflicts: bool) -> None:
        meta = model._meta
        self.model = model
        self.fields = [field for field in meta.concrete_fields if field is not meta.pk]
        self.converters = [_instance_value(field, db) for field in self.fields]
        quote = db.ops.quote_name
        on_conflict = OnConflict.IGNORE if ignore_conflicts else None
        self.head = (
            f"{db.ops.insert_statement(on_conflict=on_conflict)} {quote(meta.db_table)} "
            f"({', '.join(quote(str(field.column)) for field in self.fields)}) VALUES "
        )
        self.row = f"({', '.join(['%s'] * len(self.fields))})"
        self.returning = not ignore_conflicts and meta.pk is not None
        suffix: str = db.ops.on_conflict_suffix_sql(self.fields, on_conflict, None, None) or ""
        if self.returning and meta.pk is not None:
            suffix += f" RETURNING {quote(str(meta.pk.column))}"
        self.tail = suffix
        self.statements: dict[int, str] = {}

    def sql(self, rows: int) -> str:
        statement = self.statements.get(rows)
        if statement is None:
            statement = self.head + ", ".join([self.row] * rows) + self.tail
            self.statements[rows] = statement
        return statement


_INSERT_SHAPES: dict[tuple[Any, ...], _InsertShape] = {}


def _instance_value(field: models.Field[Any, Any], db: Any) -> Callable[[models.Model], Any]:
    """How to read `field`'s column value off an instance, ready for `db`."""
    attname = field.attname
    if isinstance(field, models.ForeignKey):
        convert = _converter(field.target_field, db)

        def related(instance: models.Model) -> Any:
            value = getattr(instance, attname)
            if value is None and field.is_cached(instance):
                # Assigned before it was saved (bulk_create's _prepare_related_fields_for_save).
                target = field.get_cached_value(instance)
                if target is not None:
                    if target.pk is None:
                        raise ValueError(
                            f"bulk_insert: {field.name} is an unsaved {type(target).__name__}"
                        )
                    setattr(instance, field.name, target)  # keeps it cached, as Django does
                    value = target.pk
            return value if value is None else convert(value)

        return related
    convert = _converter(field, db)
    return lambda instance: convert(getattr(instance, attname))


_AS_IS = (models.CharField, models.TextField, models.IntegerField, models.BooleanField)


def _converter(field: models.Field[Any, Any], db: Any = connection) -> Callable[[Any], Any]:
    """The conversion `field`'s values need on `db`: what its get_db_prep_save does, with
    the work chosen once (text, integers and booleans go as they are)."""
    if isinstance(field, models.ForeignKey):
        return _converter(field.target_field, db)
    if isinstance(field, models.DateTimeField):
        if _utc_text(db):
            return _write_utc_text
        return db.ops.adapt_datetimefield_value  # type: ignore[no-any-return]
    if isinstance(field, _AS_IS):
        return _as_is
    return lambda value: field.get_db_prep_save(value, db)


def _as_is(value: Any) -> Any:
    return value


# ---------------------------------------------------------------- datetimes on SQLite
#
# SQLite keeps a datetime as UTC text (USE_TZ).  Django converts each value through
# its field, its backend and the timezone helpers, each reading the settings: a few
# microseconds a value, which the claims and batches pay a million times a run.  The
# helpers below do the same conversion in one step, for aware datetimes and the
# backend's own text; anything else goes Django's way.


def _utc_text(db: Any) -> bool:
    """Whether `db` keeps datetimes as UTC text (SQLite with USE_TZ and no TIME_ZONE)."""
    return bool(db.vendor == "sqlite" and db.timezone is dt.UTC)


def _write_utc_text(value: Any) -> Any:
    """adapt_datetimefield_value on SQLite, for UTC storage: an aware datetime's UTC text."""
    global _LAST_WRITTEN  # one tuple, swapped whole: safe across threads
    last, text = _LAST_WRITTEN
    if value is last:  # a batch's `now`, in every row's created_at and updated_at
        return text
    if isinstance(value, dt.datetime) and value.utcoffset() is not None:
        text = str(value.astimezone(dt.UTC).replace(tzinfo=None))
        _LAST_WRITTEN = (value, text)
        return text
    return connection.ops.adapt_datetimefield_value(value)


_NOTHING_YET = object()
_LAST_WRITTEN: tuple[Any, str] = (_NOTHING_YET, "")  # no caller passes it: None stays NULL


def _read_utc_text(value: Any, expression: Any, db: Any) -> Any:
    """convert_datetimefield_value on SQLite, for UTC storage: the value back as an aware
    datetime.  The driver parses declared datetime columns already (Django registers
    parse_datetime with it); an expression's text is parsed here (parse_datetime tries
    fromisoformat first too)."""
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return parsed if parsed.utcoffset() is not None else parsed.replace(tzinfo=dt.UTC)
    return db.ops.convert_datetimefield_value(value, expression, db)


def _fast_converters(converters: dict[int, Any], db: Any) -> dict[int, Any]:
    """A compiled query's converters, with `_read_utc_text` for SQLite's datetime one."""
    if not _utc_text(db):
        return converters
    slow = db.ops.convert_datetimefield_value
    return {
        position: ([_read_utc_text if f == slow else f for f in functions], expression)
        for position, (functions, expression) in converters.items()
    }


class PlusDays(Func):
    """A datetime expression plus whole `days`, computed by the database itself.

    Django's own `F(...) + timedelta` calls back into Python for every row on
    SQLite (its django_format_dtdelta function); SQLite's datetime() does the
    same in C, and PostgreSQL adds an interval.  On SQLite the result has whole
    seconds: fine for ranges measured in days.
    """

    output_field = models.DateTimeField()

    def __init__(self, expression: Any, days: int) -> None:
        self.days = int(days)
        super().__init__(expression, template=f"(%(expressions)s + interval '{self.days} days')")

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        template = f"datetime(%(expressions)s, '{self.days:+d} days')"
        return self.as_sql(compiler, connection, template=template, **extra_context)


def claimable(rows: QuerySet[M, Any]) -> QuerySet[M, Any]:
    """`rows` to claim: locked until commit, skipping those another worker holds, where
    the database can (PostgreSQL; SQLite has one writer at a time anyway)."""
    if connection.features.has_select_for_update_skip_locked:
        return rows.select_for_update(skip_locked=True)
    return rows


# ---------------------------------------------------------------- prepared queries


class Param(Expression):
    """A value given each time a `Prepared` query runs: `next_action_at__lte=Param("now", ...)`.

    Compiled, it is one placeholder; its value goes through `output_field`'s own
    preparation for the database (a datetime becomes SQLite's text form), as a
    plain value in the filter would.
    """

    def __init__(self, name: str, output_field: models.Field[Any, Any]) -> None:
        super().__init__(output_field=output_field)
        self.name = name

    def as_sql(self, compiler: Any, connection: Any) -> Any:  # (SQL, its parameters)
        return "%s", [self]

    def prepare(self, value: Any, connection: Any) -> Any:
        if (
            isinstance(value, dt.datetime)
            and value.utcoffset() is not None
            and isinstance(self.output_field, models.DateTimeField)
            and _utc_text(connection)
        ):
            return _write_utc_text(value)
        return self.output_field.get_db_prep_value(value, connection)


class ParamList(Param):
    """A list of values given each time a `Prepared` query runs: `pk__in=ParamList("ids", ...)`.

    Its placeholders are counted at each run.  An empty list matches nothing
    (`IN (NULL)`); so that this holds for the whole query, a ParamList is not
    for use under a negation (`exclude`, `~Q`).
    """

    def as_sql(self, compiler: Any, connection: Any) -> Any:  # (SQL, its parameters)
        return f"({self.marker})", [self]

    @property
    def marker(self) -> str:
        return f"<<param list {self.name}>>"


class Prepared(Generic[M]):
    """A hot queryset compiled to SQL once per shape and database, then run with new values.

    Building and compiling a queryset costs the ORM far more than running it
    does (a claim of ten cases: about 240 µs to compile against 15 µs on the
    cursor).  `build` makes the queryset from its shape (a slice's size, say),
    with a `Param` or `ParamList` where a value changes from run to run; the
    compiled statement is kept per shape and database connection, and each
    run only substitutes the values.  The SQL is Django's own for the
    database in use, so it is what the queryset would have run.

    Rows come back as the queryset would give them: `instances` for a
    queryset of models (select_related included), `rows` for `values_list`.
    It runs on the default database, as every query here does (no routers).
    """

    def __init__(self, build: Callable[..., QuerySet[M, Any]]) -> None:
        self.build = build
        self.compiled: dict[tuple[Any, ...], _Compiled] = {}

    def __call__(self, *shape: Hashable) -> _Compiled:
        return _per_database(self.compiled, shape, lambda _: _Compiled(self.build(*shape)))


class _Compiled:
    """One shape of a `Prepared` query, compiled (at its first run, in the caller's
    transaction, as select_for_update wants)."""

    def __init__(self, queryset: QuerySet[Any, Any]) -> None:
        self.queryset = queryset
        self.sql = ""
        self.params: list[Any] = []
        self.compiler: Any = None

    def _compile(self, db: Any) -> None:
        # A copy: compiling sets the query up, and another thread may be compiling too.
        compiler = self.queryset.query.clone().get_compiler(using=db.alias)
        sql, params = compiler.as_sql()
        selected = [column[0] for column in compiler.select[: compiler.col_count]]
        self.converters = _fast_converters(compiler.get_converters(selected), db)
        self.sql, self.params = sql, list(params)
        self.compiler = compiler  # last: another thread takes it as "compiled"

    def execute(self, values: dict[str, Any]) -> list[Any]:
        """The raw rows for `values`, trimmed to the selected columns."""
        db = _database()
        if self.compiler is None:
            self._compile(db)
        elif (
            self.queryset.query.select_for_update
            and db.features.has_select_for_update
            and db.get_autocommit()
        ):
            raise TransactionManagementError(
                "select_for_update cannot be used outside of a transaction."
            )
        sql, params = _bind(self.sql, self.params, values, db)
        with db.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        compiler = self.compiler
        if compiler.has_extra_select:
            rows = [row[: compiler.col_count] for row in rows]
        if self.converters:
            rows = list(compiler.apply_converters(rows, self.converters))
        return rows

    def rows(self, **values: Any) -> list[tuple[Any, ...]]:
        """The rows of a `values_list` queryset, as tuples."""
        return [tuple(row) for row in self.execute(values)]

    def instances(self, **values: Any) -> list[Any]:
        """The model instances of a queryset of models (and their select_related ones)."""
        rows = self.execute(values)
        compiler, db = self.compiler, _database().alias
        klass_info = compiler.klass_info
        if compiler.annotation_col_map:
            raise ValueError("a prepared query's instances carry no annotations")
        fields = klass_info["select_fields"]
        start, end = fields[0], fields[-1] + 1
        names = [column[0].target.attname for column in compiler.select[start:end]]
        # The stubs follow a later Django, whose populators take a fetch mode.
        related = get_related_populators(klass_info, compiler.select, db)  # type: ignore[call-arg]
        found = []
        for row in rows:
            instance = klass_info["model"].from_db(db, names, row[start:end])
            for populator in related:
                populator.populate(row, instance)
            found.append(instance)
        return found


def _database() -> Any:
    """The connection itself, not `connection`, which looks it up at each use."""
    return connections[DEFAULT_DB_ALIAS]


def _per_database(
    cache: dict[tuple[Any, ...], T], shape: tuple[Any, ...], make: Callable[[Any], T]
) -> T:
    """What `make(db)` gives for this shape on the default database, made once and kept
    (a compiled statement depends on the database's SQL dialect as well as the shape)."""
    db = _database()
    key = (db.alias, db.vendor, *shape)
    found = cache.get(key)
    if found is None:
        found = cache[key] = make(db)
    return found


def _bind(sql: str, params: list[Any], values: dict[str, Any], db: Any) -> tuple[str, list[Any]]:
    """The compiled statement with `values` in place of its `Param`s, ready to run on `db`."""
    bound: list[Any] = []
    for param in params:
        if isinstance(param, ParamList):
            items = [param.prepare(item, db) for item in values[param.name]]
            sql = sql.replace(param.marker, ", ".join(["%s"] * len(items)) or "NULL", 1)
            bound += items
        elif isinstance(param, Param):
            bound.append(param.prepare(values[param.name], db))
        else:
            bound.append(param)
    return sql, bound


class PreparedUpdate:
    """`QuerySet.update` compiled once per shape and database, as `Prepared` does a read.

    `build` makes, from the shape, the queryset and the values to set, with a
    `Param` (or `ParamList` in the filter) where a value changes from run to run.
    """

    def __init__(self, build: Callable[..., tuple[QuerySet[Any, Any], dict[str, Any]]]) -> None:
        self.build = build
        self.compiled: dict[tuple[Any, ...], _CompiledUpdate] = {}

    def __call__(self, *shape: Hashable) -> _CompiledUpdate:
        return _per_database(self.compiled, shape, lambda _: _CompiledUpdate(*self.build(*shape)))


class _CompiledUpdate:
    def __init__(self, queryset: QuerySet[Any, Any], fields: dict[str, Any]) -> None:
        query: Any = queryset.query.chain(UpdateQuery)
        query.add_update_values(fields)
        query.annotations = {}
        self.query = query
        self.sql = ""
        self.params: list[Any] = []

    def run(self, **values: Any) -> int:
        """Update the rows for `values`; returns how many there were."""
        db = _database()
        if not self.sql:
            # A copy: compiling sets the query up, and another thread may be compiling too.
            compiler = self.query.clone().get_compiler(using=db.alias)
            if self.query.related_updates or not db.features.update_can_self_select:
                # Django would read the rows' ids first: that read is not compiled once.
                raise ValueError("this update cannot be prepared on this database")
            sql, params = compiler.as_sql()
            self.params = list(params)
            self.sql = sql  # last: another thread takes it as "compiled"
        sql, params = _bind(self.sql, self.params, values, db)
        with (
            transaction.mark_for_rollback_on_error(using=db.alias),
            db.cursor() as cursor,
        ):
            cursor.execute(sql, params)
            return int(cursor.rowcount)
