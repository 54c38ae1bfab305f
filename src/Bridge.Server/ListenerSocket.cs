using System.Net;
using System.Net.Sockets;

namespace Bridge.Server;

/// <summary>A port in use, said in one line that names the setting to change.</summary>
public sealed class PortInUseException(string message, Exception innerException) : Exception(message, innerException);

/// <summary>
/// A port checked before the host is built: in use fails here with <see cref="PortInUseException"/>; port 0 is bound
/// here and handed to Kestrel by handle, so the real port is known at once (the embedded defaults need it).
/// </summary>
internal sealed class ListenerSocket : IDisposable
{
    private readonly Socket? _socket;

    private ListenerSocket(IPAddress address, Socket? socket, int port)
    {
        Address = address;
        _socket = socket;
        Handle = socket is null ? null : (ulong)socket.Handle;
        Port = port;
    }

    public IPAddress Address { get; }

    /// <summary>The bound socket's descriptor for port 0; null when Kestrel binds the fixed port itself.</summary>
    public ulong? Handle { get; }

    public int Port { get; }

    public void ListenOn(Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions kestrel, Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols protocols)
    {
        if (Handle is { } handle)
        {
            kestrel.ListenHandle(handle, l => l.Protocols = protocols);
        }
        else
        {
            kestrel.Listen(Address, Port, l => l.Protocols = protocols);
        }
    }

    public static ListenerSocket Bind(IPAddress address, int port, string setting)
    {
        var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            // As Kestrel does on Unix: a restart may bind while old connections sit in TIME_WAIT; a live listener still refuses.
            if (!OperatingSystem.IsWindows())
            {
                socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            }

            socket.Bind(new IPEndPoint(address, port));
            socket.Listen(512);
        }
        catch (SocketException ex) when (ex.SocketErrorCode is SocketError.AddressAlreadyInUse or SocketError.AccessDenied)
        {
            socket.Dispose();
            throw new PortInUseException(
                $"Port {port} on {address} is {(ex.SocketErrorCode == SocketError.AccessDenied ? "not allowed" : "already in use")}: set {setting} (environment {setting.Replace(":", "__", StringComparison.Ordinal)}) to a free port, or 0 for any.",
                ex);
        }

        var bound = ((IPEndPoint)socket.LocalEndPoint!).Port;
        if (port != 0)
        {
            // A fixed port was free a moment ago: Kestrel binds it itself, exactly as configured.
            socket.Dispose();
            return new ListenerSocket(address, socket: null, bound);
        }

        return new ListenerSocket(address, socket, bound);
    }

    /// <summary>Kestrel accepts on the descriptor but does not close it: the owner closes it once the server stopped.</summary>
    public void Dispose() => _socket?.Dispose();
}
