namespace Bridge.Emulators.CloudTasks;

/// <summary>What an acknowledged change survives with <see cref="EmulatorOptions.Data"/> set.</summary>
public enum EmulatorDurability
{
    /// <summary>
    /// The emulator process being killed at any moment (SIGKILL, a crash): SQLite WAL with synchronous=NORMAL, each
    /// commit written to the WAL file before the call is answered but fsynced only at checkpoints, so an OS crash or
    /// power loss may take back the last acknowledged changes. The default: fast, and what a local emulator needs.
    /// </summary>
    ProcessCrash,

    /// <summary>Power loss and OS crashes too: synchronous=FULL, every commit fsynced before the call is answered (slower).</summary>
    PowerLoss,
}
