namespace Bridge.Emulators.CloudTasks;

/// <summary>The names under which the emulator reports telemetry, for hosts that listen (the runner, the executable).</summary>
public static class CloudTasksEmulatorTelemetry
{
    /// <summary>The emulator's ActivitySource: one client span per dispatch attempt, tagged with <c>CloudTasksTelemetry.Tags</c>.</summary>
    public const string SourceName = "Bridge.Emulators.CloudTasks";
}
