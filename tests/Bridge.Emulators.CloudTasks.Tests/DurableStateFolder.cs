using Bridge.Emulators.CloudTasks.Internal;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Time.Testing;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>
/// A temporary data folder for the SQLite store, deleted on dispose, and the fake clock the states over it share. A
/// state closed and opened again on the folder stands for the restarted process.
/// </summary>
internal sealed class DurableStateFolder : IDisposable
{
    public DurableStateFolder(FakeTimeProvider? clock = null)
    {
        Clock = clock ?? new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
    }

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "bridge-emulator-" + Guid.NewGuid().ToString("N"));

    public FakeTimeProvider Clock { get; }

    /// <summary>A state over the folder's store (created on first use, read back after that).</summary>
    public EmulatorState Open(EmulatorOptions? options = null) => Open(OpenStore(), options);

    /// <summary>A state over <paramref name="store"/>, the folder's store opened by the test (to hook its commits).</summary>
    public EmulatorState Open(SqliteStore store, EmulatorOptions? options = null) => new(store, options ?? new EmulatorOptions(), Clock);

    public SqliteStore OpenStore() => new(Path);

    /// <summary>
    /// The dispatch count of each task row of <paramref name="queue"/>, by task name, as the data folder has it now:
    /// read past the store, while a store or an emulator process has the folder open (WAL: readers do not block it).
    /// </summary>
    public IReadOnlyDictionary<string, int> StoredDispatchCounts(string queue)
    {
        using var db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = System.IO.Path.Combine(Path, "cloudtasks-emulator.db"), Pooling = false }.ToString());
        db.Open();
        using var command = db.CreateCommand();
        command.CommandText = "SELECT name, data FROM tasks WHERE queue = $q";
        command.Parameters.AddWithValue("$q", queue);
        using var reader = command.ExecuteReader();
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        while (reader.Read())
        {
            counts[reader.GetString(0)] = Bridge.CloudTasks.V2Beta3.Task.Parser.ParseFrom((byte[])reader[1]).DispatchCount;
        }

        return counts;
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools(); // pooled connections keep the files open
        if (Directory.Exists(Path))
        {
            Directory.Delete(Path, recursive: true);
        }
    }
}
