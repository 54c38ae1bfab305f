namespace Bridge.CloudTasks;

/// <summary>The names under which the client reports telemetry, for hosts that listen to it.</summary>
public static class CloudTasksTelemetry
{
    /// <summary>The client's ActivitySource: one client span per call, retries included.</summary>
    public const string SourceName = "Bridge.CloudTasks";
}
