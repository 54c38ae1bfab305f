using System.Diagnostics;
using System.Reflection;

namespace Bridge.CloudTasks.Internal;

/// <summary>The client's one ActivitySource and the names it uses (OpenTelemetry RPC semantic conventions).</summary>
internal static class CloudTasksDiagnostics
{
    public const string SourceName = CloudTasksTelemetry.SourceName;

    public static readonly ActivitySource ActivitySource = new(
        SourceName,
        typeof(CloudTasksDiagnostics).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0");

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
