using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Reflection;

namespace Bridge.CloudTasks.Internal;

/// <summary>The client's one ActivitySource and the names it uses (OpenTelemetry RPC semantic conventions).</summary>
internal static class CloudTasksDiagnostics
{
    public const string SourceName = CloudTasksTelemetry.SourceName;

    private static readonly string Version = typeof(CloudTasksDiagnostics).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";

    public static readonly ActivitySource ActivitySource = new(SourceName, Version);

    /// <summary>The client's Meter, named like its ActivitySource.</summary>
    public static readonly Meter Meter = new(SourceName, Version);

    /// <summary>Retries inside one call (its deadline), by method and the status that caused them.</summary>
    public static readonly Counter<long> Retries = Meter.CreateCounter<long>("bridge.cloudtasks.client.retries", "{retry}", "Cloud Tasks calls retried within their deadline, by RPC method and gRPC status code.");

    public static class Tags
    {
        public const string RpcSystem = "rpc.system";
        public const string RpcService = "rpc.service";
        public const string RpcMethod = "rpc.method";
        public const string RpcGrpcStatusCode = "rpc.grpc.status_code";
        public const string ServerAddress = "server.address";
        public const string ServerPort = "server.port";
        public const string ErrorType = "error.type";
        public const string Attempts = "bridge.cloudtasks.attempts";
    }
}
