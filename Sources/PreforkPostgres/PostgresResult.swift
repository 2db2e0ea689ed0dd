import CLibpq

/// The rows of a statement, decoded at once (the libpq result is freed before this is handed out).
public struct PostgresResult: Sendable {
    public let columns: [String]
    public let rows: [PostgresRow]
    /// `PQcmdTuples`: rows inserted, updated or deleted.
    public let affectedRows: Int

    init(_ result: OpaquePointer) throws(PostgresError) {
        let columnCount = Int(PQnfields(result))
        let rowCount = Int(PQntuples(result))
        var columns: [String] = []
        var types: [UInt32] = []
        for column in 0..<columnCount {
            columns.append(String(cString: PQfname(result, Int32(column))))
            types.append(PQftype(result, Int32(column)))
        }
        let index = ColumnIndex(columns)
        var rows: [PostgresRow] = []
        rows.reserveCapacity(rowCount)
        for row in 0..<rowCount {
            var values: [PostgresValue] = []
            values.reserveCapacity(columnCount)
            for column in 0..<columnCount {
                if PQgetisnull(result, Int32(row), Int32(column)) != 0 {
                    values.append(.null)
                } else {
                    let text = String(cString: PQgetvalue(result, Int32(row), Int32(column)))
                    values.append(try PostgresValue(text: text, type: types[column]))
                }
            }
            rows.append(PostgresRow(index: index, values: values))
        }
        self.columns = columns
        self.rows = rows
        self.affectedRows = Int(String(cString: PQcmdTuples(result))) ?? 0
    }
}

public struct PostgresRow: Sendable {
    let index: ColumnIndex
    public let values: [PostgresValue]

    /// The value of a column by name (the first of that name); `.null` for a column the row does not have.
    public subscript(_ column: String) -> PostgresValue {
        index.position(of: column).map { values[$0] } ?? .null
    }

    public subscript(_ position: Int) -> PostgresValue { values[position] }
}

/// Column positions by name, shared by a result's rows. A statement returns a handful of columns, and for those
/// comparing the names (short strings, compared inline) is cheaper than building and probing a dictionary for
/// every result; a wide result still gets one.
struct ColumnIndex: Sendable {
    private let names: [String]
    private let positions: [String: Int]?

    init(_ names: [String]) {
        self.names = names
        positions = names.count > 16
            ? Dictionary(names.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first }) : nil
    }

    func position(of name: String) -> Int? {
        if let positions { return positions[name] }
        return names.firstIndex(of: name)
    }
}
