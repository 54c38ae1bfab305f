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

    public void Dispose()
    {
        SqliteConnection.ClearAllPools(); // pooled connections keep the files open
        if (Directory.Exists(Path))
        {
            Directory.Delete(Path, recursive: true);
        }
    }
}
