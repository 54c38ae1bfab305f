using System.Security.Cryptography;
using System.Text;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>
/// A task name as 16 bytes (the first half of its SHA-256), for names kept only to be recognised again: tombstones
/// and purged names live for the queue's tombstone_ttl, and a full name string costs about 130 bytes more than its
/// key. Two names share a key with a chance of about n / 2^128 (not reachable on purpose either: SHA-256), and a
/// shared key only keeps a name reserved longer (reservations merge to the later end), never frees one early.
/// </summary>
internal static class TaskNameKey
{
    private const int MaxStackBytes = 1024;

    public static UInt128 Of(string taskName)
    {
        // Sized to the name (a stack buffer is zeroed when made: every dispatched success makes one), not to the
        // largest name; names are ASCII in practice, so the count is one vectorized pass.
        var length = Encoding.UTF8.GetByteCount(taskName);
        var onHeap = length > MaxStackBytes ? new byte[length] : null;
        Span<byte> utf8 = onHeap ?? stackalloc byte[length];
        var written = Encoding.UTF8.GetBytes(taskName, utf8);
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(utf8[..written], hash);
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt128LittleEndian(hash);
    }
}
