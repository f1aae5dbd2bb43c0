namespace OnnxStream.Graph.OnnxFormat;

/// <summary>Protobuf wire types.</summary>
internal enum WireType
{
    Varint = 0,
    Fixed64 = 1,
    LengthDelimited = 2,
    StartGroup = 3,
    EndGroup = 4,
    Fixed32 = 5,
}

/// <summary>
/// Reads the protobuf wire format from a seekable stream, tracking the absolute file position, so that a
/// large length-delimited field (a tensor's raw data) can be located and skipped without reading it.
/// Every length is checked against the end of its enclosing message; a malformed or truncated file gives
/// a <see cref="ModelFormatException"/> naming the file and the byte.
/// </summary>
internal sealed class ProtoStreamReader : IDisposable
{
    private readonly Stream _stream;
    private readonly byte[] _buffer = new byte[64 * 1024];
    private long _bufferPosition; // file position of _buffer[0]
    private int _start;           // next unread byte in _buffer
    private int _end;             // bytes of _buffer that hold data

    public ProtoStreamReader(string path)
    {
        Path = path;
        _stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.RandomAccess);
        Length = _stream.Length;
    }

    /// <summary>The file, for messages.</summary>
    public string Path { get; }

    /// <summary>Bytes in the file.</summary>
    public long Length { get; }

    /// <summary>The absolute position of the next byte to read.</summary>
    public long Position => _bufferPosition + _start;

    /// <summary>Moves to <paramref name="position"/>, keeping the buffer when it already holds that byte.</summary>
    public void Seek(long position)
    {
        if (position < 0 || position > Length) throw Malformed($"seek to byte {position}, outside the file");
        if (position >= _bufferPosition && position <= _bufferPosition + _end)
        {
            _start = (int)(position - _bufferPosition);
            return;
        }
        _stream.Position = position;
        _bufferPosition = position;
        _start = _end = 0;
    }

    /// <summary>Reads a field tag; the field number is never 0.</summary>
    public (int Field, WireType Wire) ReadTag(long end)
    {
        var at = Position;
        var tag = ReadVarint(end);
        var field = tag >> 3;
        if (field == 0 || field > 536_870_911) throw Malformed($"invalid field tag {tag} at byte {at}");
        return ((int)field, (WireType)(tag & 7));
    }

    /// <summary>Reads a base-128 varint that must end before <paramref name="end"/>.</summary>
    public ulong ReadVarint(long end)
    {
        ulong value = 0;
        var at = Position;
        for (var shift = 0; shift < 70; shift += 7)
        {
            if (Position >= end) throw Truncated(at, end, "a varint");
            var b = ReadByte();
            value |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return value;
        }
        throw Malformed($"varint longer than 10 bytes at byte {at}");
    }

    /// <summary>Reads a length prefix and returns the end position of the payload, checked against <paramref name="end"/>.</summary>
    public long ReadLengthAndGetEnd(long end)
    {
        var at = Position;
        var length = ReadVarint(end);
        if (length > (ulong)(end - Position))
            throw Truncated(at, end, $"a field of {length} bytes");
        return Position + (long)length;
    }

    /// <summary>Skips a field's payload of the given wire type.</summary>
    public void SkipField(WireType wire, long end)
    {
        switch (wire)
        {
            case WireType.Varint: ReadVarint(end); break;
            case WireType.Fixed64: SkipTo(Position + 8, end); break;
            case WireType.Fixed32: SkipTo(Position + 4, end); break;
            case WireType.LengthDelimited: Seek(ReadLengthAndGetEnd(end)); break;
            default: throw Malformed($"unsupported wire type {(int)wire} (groups are deprecated) before byte {Position}");
        }
    }

    /// <summary>Reads the bytes [Position, Position + count).</summary>
    public byte[] ReadBytes(long count, long end)
    {
        if (count < 0 || count > end - Position) throw Truncated(Position, end, $"{count} bytes");
        if (count > Array.MaxLength) throw Malformed($"a field of {count} bytes at byte {Position} is too large to read");
        var result = new byte[count];
        var done = 0;
        while (done < count)
        {
            if (_start == _end) Fill();
            var n = Math.Min(_end - _start, (int)count - done);
            Buffer.BlockCopy(_buffer, _start, result, done, n);
            _start += n;
            done += n;
        }
        return result;
    }

    /// <summary>Reads a length-delimited payload (after its tag) as bytes.</summary>
    public byte[] ReadLengthDelimited(long end)
    {
        var payloadEnd = ReadLengthAndGetEnd(end);
        return ReadBytes(payloadEnd - Position, payloadEnd);
    }

    /// <summary>
    /// The next <paramref name="count"/> bytes as a span of the buffer when they are all in it (no copy),
    /// else a new array; either way the position moves past them.
    /// </summary>
    public ReadOnlySpan<byte> ReadSpan(long count, long end)
    {
        if (count < 0 || count > end - Position) throw Truncated(Position, end, $"{count} bytes");
        if (count > _buffer.Length) return ReadBytes(count, end);
        if (count > _end - _start)
        {
            // Move what is left to the front and fill the rest, so the slice is contiguous.
            var left = _end - _start;
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, left);
            _bufferPosition += _start;
            _start = 0;
            _end = left;
            if (_stream.Position != _bufferPosition + _end) _stream.Position = _bufferPosition + _end;
            while (_end < count)
            {
                var read = _stream.Read(_buffer, _end, _buffer.Length - _end);
                if (read == 0) throw new ModelFormatException($"{Path}: unexpected end of file at byte {_bufferPosition + _end} (truncated file?)");
                _end += read;
            }
        }
        var span = new ReadOnlySpan<byte>(_buffer, _start, (int)count);
        _start += (int)count;
        return span;
    }

    /// <summary>Reads the bytes [start, stop) of the file, leaving the position at <paramref name="stop"/>.</summary>
    public byte[] ReadRange(long start, long stop)
    {
        Seek(start);
        return ReadBytes(stop - start, stop);
    }

    public ModelFormatException Malformed(string what) => new($"{Path}: malformed protobuf: {what}");

    private ModelFormatException Truncated(long at, long end, string what) =>
        end >= Length
            ? new ModelFormatException($"{Path}: the file ends (at byte {Length}) inside {what} that starts at byte {at} (truncated file?)")
            : Malformed($"{what} at byte {at} runs past the end of its enclosing message at byte {end}");

    private void SkipTo(long position, long end)
    {
        if (position > end) throw Truncated(Position, end, "a fixed-size value");
        Seek(position);
    }

    private byte ReadByte()
    {
        if (_start == _end) Fill();
        return _buffer[_start++];
    }

    private void Fill()
    {
        _bufferPosition += _end;
        _start = 0;
        _end = 0;
        if (_stream.Position != _bufferPosition) _stream.Position = _bufferPosition;
        var read = _stream.Read(_buffer, 0, _buffer.Length);
        if (read == 0)
            throw new ModelFormatException($"{Path}: unexpected end of file at byte {_bufferPosition} (truncated file?)");
        _end = read;
    }

    public void Dispose() => _stream.Dispose();
}
