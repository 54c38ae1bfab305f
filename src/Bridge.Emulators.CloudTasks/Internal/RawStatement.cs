using System.Text;
using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>
/// A write statement prepared once and run through SQLitePCL directly, for the store's writes made per task (a
/// dispatched success, a create). SqliteCommand.ExecuteNonQuery built a data reader, walked the command's statement
/// list, bound each parameter through its value binder and converted every string to a new UTF-8 array, on every
/// call; here a call binds and steps, with strings encoded into one buffer this statement keeps. Used by one thread
/// (the store's writer). Every return code is checked: a failure throws <see cref="SqliteException"/>, which fails
/// the commit it runs in exactly as a failed ExecuteNonQuery did.
/// </summary>
internal sealed class RawStatement : IDisposable
{
    private readonly sqlite3 _db;
    private readonly sqlite3_stmt _statement;
    private byte[] _utf8 = new byte[256];

    public RawStatement(sqlite3 db, string sql)
    {
        _db = db;
        var rc = raw.sqlite3_prepare_v2(db, sql, out _statement);
        if (rc != raw.SQLITE_OK)
        {
            _statement?.Dispose();
            throw Failure(rc);
        }
    }

    public void Bind(int index, long value) => Check(raw.sqlite3_bind_int64(_statement, index, value));

    public void Bind(int index, long? value) =>
        Check(value is { } v ? raw.sqlite3_bind_int64(_statement, index, v) : raw.sqlite3_bind_null(_statement, index));

    /// <summary>SQLite copies the bytes (SQLITE_TRANSIENT), so the buffer is free again once this returns.</summary>
    public void Bind(int index, string value)
    {
        if (value.Length == 0)
        {
            Check(raw.sqlite3_bind_text(_statement, index, value)); // an empty span would bind a null pointer: NULL, not ''
            return;
        }

        var most = Encoding.UTF8.GetMaxByteCount(value.Length);
        if (_utf8.Length < most)
        {
            _utf8 = new byte[Math.Max(most, _utf8.Length * 2)];
        }

        var length = Encoding.UTF8.GetBytes(value, _utf8);
        Check(raw.sqlite3_bind_text(_statement, index, _utf8.AsSpan(0, length)));
    }

    public void Bind(int index, byte[] value) =>
        Check(value.Length == 0 ? raw.sqlite3_bind_zeroblob(_statement, index, 0) : raw.sqlite3_bind_blob(_statement, index, value.AsSpan()));

    /// <summary>Runs the statement to its end (it returns no rows) and makes it ready for the next binding.</summary>
    public void Execute()
    {
        var rc = raw.sqlite3_step(_statement);
        if (rc == raw.SQLITE_DONE)
        {
            raw.sqlite3_reset(_statement);
            return;
        }

        var failure = rc == raw.SQLITE_ROW
            ? new SqliteException("A write statement returned a row.", rc, rc)
            : Failure(rc); // read before the reset, which reports the same error again
        raw.sqlite3_reset(_statement);
        throw failure;
    }

    public void Dispose() => _statement.Dispose();

    private void Check(int rc)
    {
        if (rc != raw.SQLITE_OK)
        {
            throw Failure(rc);
        }
    }

    private SqliteException Failure(int rc) =>
        new($"SQLite Error {rc}: '{raw.sqlite3_errmsg(_db).utf8_to_string()}'.", rc, raw.sqlite3_extended_errcode(_db));
}
